/*
 * Simulated libnvidia-ml.so.1 for coderig sandbox hosts (docs/simulation-seam.md).
 *
 * Enough of NVML's C ABI for real pynvml calls: init/shutdown, counts and handles,
 * name, UUID, index, memory (v1 and v2), PCI info, compute capability, driver/NVML/
 * CUDA versions, compute processes and error strings. The cards come from
 * /etc/coderig-sim/gpus.json; memory in use from /run/coderig-sim/usage.json (read
 * on every call, so it follows what the Ollama simulator loads). Built on the
 * controller: gcc -shared -fPIC -Wl,-soname,libnvidia-ml.so.1.
 *
 * Memory as a real driver reports it (shared/reference/real-gpu-notes.md): the v1
 * call counts the driver's reserved memory (gpus.json `reserved_mib`) as used, the
 * v2 call reports it apart, as nvidia-smi does: v1 used = v2 used + reserved.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0, NVML_ERROR_UNINITIALIZED = 1, NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3, NVML_ERROR_NOT_FOUND = 6, NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9, NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999
};

#define MAX_GPUS 16
#define MAX_PROCS 64
#define MIB (1024ULL * 1024ULL)

typedef struct {
    unsigned int index;
    char name[96], uuid[96], bus_id[32];
    unsigned long long total_mib, idle_mib, reserved_mib;
    int cc_major, cc_minor;
    unsigned int pci_device_id;
} sim_device;
typedef sim_device *nvmlDevice_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
/* NVML_STRUCT_VERSION(Memory, 2), as nvml.h defines it. */
#define NVML_MEMORY_V2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

/* Overridable (CODERIG_SIM_GPUS / CODERIG_SIM_USAGE) so tests can run it anywhere. */
static const char *path_of(const char *env, const char *fallback) {
    const char *p = getenv(env);
    return p && *p ? p : fallback;
}
#define GPUS_JSON path_of("CODERIG_SIM_GPUS", "/etc/coderig-sim/gpus.json")
#define USAGE_JSON path_of("CODERIG_SIM_USAGE", "/run/coderig-sim/usage.json")
static sim_device devices[MAX_GPUS];
static unsigned int device_count;
static char driver_version[32], nvml_version[32];
static int cuda_version;
static int init_refs;

/* ---- a small JSON reader: walks the text, no allocation beyond the file ---- */
static const char *ws(const char *p) { while (p && isspace((unsigned char)*p)) p++; return p; }

static const char *skip_string(const char *p) {
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : NULL;
}

static const char *skip_value(const char *p) {
    p = ws(p);
    if (!p || !*p) return NULL;
    if (*p == '"') return skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p) {
            if (*p == '"') { p = skip_string(p); if (!p) return NULL; continue; }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') { depth--; if (depth == 0) return p + 1; }
            p++;
        }
        return NULL;
    }
    while (*p && *p != ',' && *p != '}' && *p != ']') p++;
    return p;
}

/* The value of `key` in the object at `obj` ('{'), or NULL. */
static const char *member(const char *obj, const char *key) {
    obj = ws(obj);
    if (!obj || *obj != '{') return NULL;
    const char *p = ws(obj + 1);
    size_t len = strlen(key);
    while (p && *p == '"') {
        const char *end = skip_string(p);
        if (!end) return NULL;
        int match = (size_t)(end - p - 2) == len && strncmp(p + 1, key, len) == 0;
        p = ws(end);
        if (*p != ':') return NULL;
        const char *value = ws(p + 1);
        if (match) return value;
        p = ws(skip_value(value));
        if (p && *p == ',') p = ws(p + 1);
        else break;
    }
    return NULL;
}

/* Element `i` of the array at `arr` ('['), or NULL. */
static const char *element(const char *arr, unsigned int i) {
    arr = ws(arr);
    if (!arr || *arr != '[') return NULL;
    const char *p = ws(arr + 1);
    for (unsigned int n = 0; p && *p && *p != ']'; n++) {
        if (n == i) return p;
        p = ws(skip_value(p));
        if (p && *p == ',') p = ws(p + 1);
    }
    return NULL;
}

static void string_value(const char *v, char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    if (!v || *v != '"') return;
    for (v++; *v && *v != '"' && n + 1 < size; v++) {
        if (*v == '\\' && v[1]) v++;
        out[n++] = *v;
    }
    out[n] = '\0';
}

static long long number_value(const char *v, long long fallback) {
    if (!v) return fallback;
    if (*v == '"') return strtoll(v + 1, NULL, 10);
    return (*v == '-' || isdigit((unsigned char)*v)) ? strtoll(v, NULL, 10) : fallback;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) { char *b = realloc(buf, cap *= 2); if (!b) { free(buf); buf = NULL; } else buf = b; }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

/* ---- the simulated driver ---- */
static int load_devices(void) {
    char *text = read_file(GPUS_JSON);
    if (!text) return 0;
    char tmp[64];
    string_value(member(text, "driver_version"), driver_version, sizeof driver_version);
    string_value(member(text, "nvml_version"), nvml_version, sizeof nvml_version);
    string_value(member(text, "cuda_version"), tmp, sizeof tmp);
    int major = 0, minor = 0;
    sscanf(tmp, "%d.%d", &major, &minor);
    cuda_version = major * 1000 + minor * 10;
    const char *gpus = member(text, "gpus"), *g;
    device_count = 0;
    while (device_count < MAX_GPUS && (g = element(gpus, device_count)) != NULL) {
        sim_device *d = &devices[device_count];
        memset(d, 0, sizeof *d);
        d->index = (unsigned int)number_value(member(g, "index"), device_count);
        string_value(member(g, "name"), d->name, sizeof d->name);
        string_value(member(g, "uuid"), d->uuid, sizeof d->uuid);
        string_value(member(g, "bus_id"), d->bus_id, sizeof d->bus_id);
        d->total_mib = (unsigned long long)number_value(member(g, "memory_total_mib"), 0);
        d->idle_mib = (unsigned long long)number_value(member(g, "idle_used_mib"), 0);
        d->reserved_mib = (unsigned long long)number_value(member(g, "reserved_mib"), 0);
        if (d->reserved_mib > d->total_mib) d->reserved_mib = d->total_mib;
        string_value(member(g, "compute_cap"), tmp, sizeof tmp);
        sscanf(tmp, "%d.%d", &d->cc_major, &d->cc_minor);
        string_value(member(g, "pci_device_id"), tmp, sizeof tmp);
        d->pci_device_id = (unsigned int)strtoul(tmp, NULL, 16);
        device_count++;
    }
    free(text);
    return device_count > 0;
}

/* MiB in use on `index` according to the Ollama simulator. */
static unsigned long long loaded_mib(unsigned int index) {
    char *text = read_file(USAGE_JSON);
    if (!text) return 0;
    unsigned long long sum = 0;
    const char *gpus = member(text, "gpus"), *e;
    for (unsigned int i = 0; (e = element(gpus, i)) != NULL; i++)
        if ((unsigned int)number_value(member(e, "index"), -1) == index)
            sum += (unsigned long long)number_value(member(e, "used_mib"), 0);
    free(text);
    return sum;
}

static nvmlReturn_t copy_string(const char *src, char *out, unsigned int length) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, src);
    return NVML_SUCCESS;
}

#define REQUIRE_INIT() do { if (init_refs <= 0) return NVML_ERROR_UNINITIALIZED; } while (0)
#define REQUIRE_DEVICE(d) do { REQUIRE_INIT(); \
    if (!(d) || (d) < devices || (d) >= devices + device_count) return NVML_ERROR_INVALID_ARGUMENT; } while (0)

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    if (init_refs == 0 && !load_devices()) return NVML_ERROR_DRIVER_NOT_LOADED;
    init_refs++;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

nvmlReturn_t nvmlShutdown(void) {
    REQUIRE_INIT();
    init_refs--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    REQUIRE_INIT();
    return copy_string(driver_version, version, length);
}
nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    REQUIRE_INIT();
    return copy_string(nvml_version, version, length);
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version) {
    if (!version) return NVML_ERROR_INVALID_ARGUMENT;
    *version = cuda_version;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) { return nvmlSystemGetCudaDriverVersion(version); }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    REQUIRE_INIT();
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = device_count;
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    REQUIRE_INIT();
    if (!device || index >= device_count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}
nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    REQUIRE_INIT();
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < device_count; i++)
        if (strcmp(devices[i].uuid, uuid) == 0) { *device = &devices[i]; return NVML_SUCCESS; }
    return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    REQUIRE_DEVICE(device);
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = device->index;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    REQUIRE_DEVICE(device);
    return copy_string(device->name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    REQUIRE_DEVICE(device);
    return copy_string(device->uuid, uuid, length);
}

/* Bytes in use by allocations (what nvidia-smi calls used), never past total - reserved. */
static unsigned long long allocated_bytes(nvmlDevice_t d) {
    unsigned long long in_use = d->idle_mib + loaded_mib(d->index);
    if (in_use > d->total_mib - d->reserved_mib) in_use = d->total_mib - d->reserved_mib;
    return in_use * MIB;
}

/* v1: the reserved memory counts as used, so an idle card shows `reserved_mib` used. */
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    REQUIRE_DEVICE(device);
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = device->total_mib * MIB;
    memory->used = allocated_bytes(device) + device->reserved_mib * MIB;
    memory->free = memory->total - memory->used;
    return NVML_SUCCESS;
}

/* v2: reserved apart; used as nvidia-smi shows it; free = total - reserved - used. */
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    REQUIRE_DEVICE(device);
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != NVML_MEMORY_V2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = device->total_mib * MIB;
    memory->reserved = device->reserved_mib * MIB;
    memory->used = allocated_bytes(device);
    memory->free = memory->total - memory->reserved - memory->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    REQUIRE_DEVICE(device);
    if (!major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    *major = device->cc_major;
    *minor = device->cc_minor;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci) {
    REQUIRE_DEVICE(device);
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    sscanf(device->bus_id, "%x:%x:%x", &pci->domain, &pci->bus, &pci->device);
    pci->pciDeviceId = (device->pci_device_id << 16) | 0x10DE;
    snprintf(pci->busId, sizeof pci->busId, "%s", device->bus_id);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0",
             pci->domain, pci->bus, pci->device);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    REQUIRE_DEVICE(device);
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    nvmlProcessInfo_t found[MAX_PROCS];
    unsigned int n = 0;
    char *text = read_file(USAGE_JSON);
    const char *procs = text ? member(text, "processes") : NULL, *e;
    for (unsigned int i = 0; n < MAX_PROCS && (e = element(procs, i)) != NULL; i++) {
        if ((unsigned int)number_value(member(e, "gpu_index"), 0) != device->index) continue;
        found[n].pid = (unsigned int)number_value(member(e, "pid"), 0);
        found[n].usedGpuMemory = (unsigned long long)number_value(member(e, "used_mib"), 0) * MIB;
        found[n].gpuInstanceId = found[n].computeInstanceId = 0xFFFFFFFFu;
        n++;
    }
    free(text);
    unsigned int room = *count;
    *count = n;
    if (n == 0) return NVML_SUCCESS;
    if (!infos || room < n) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(infos, found, n * sizeof found[0]);
    return NVML_SUCCESS;
}
