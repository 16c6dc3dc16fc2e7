"""GPU memory per device, read from the driver: pynvml when importable, else nvidia-smi.

Both paths report the same "used": the driver's reserved memory apart, as nvidia-smi
shows it. NVML's v1 call counts the reserved memory as used (615 MiB on an idle H200
where nvidia-smi said 0: shared/reference/real-gpu-notes.md), so pynvml reads the v2
call (``nvmlDeviceGetMemoryInfo_v2``, with ``reserved``) and falls back to v1 only on
a driver without it; the probe's ``memory_api`` says which figure it is. The memory a
model can use is total minus reserved (``usable_mib``), not the marketing size.

The nvidia-smi parser survives what real hosts print (shared/reference/host-outputs.md):
with or without a header line, with or without units (`24564 MiB`), `[N/A]` for
unsupported fields, names with or without the `NVIDIA ` prefix.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from coderig_deploy.errors import BenchError

QUERY_FIELDS = ("index", "name", "uuid", "memory.total", "memory.used", "memory.reserved")
# Drivers older than the memory.reserved field reject the query (exit 2): ask again without.
LEGACY_FIELDS = QUERY_FIELDS[:5]
_FORMAT = "--format=csv,noheader,nounits"
NVIDIA_SMI_ARGS = ("--query-gpu=" + ",".join(QUERY_FIELDS), _FORMAT)
LEGACY_ARGS = ("--query-gpu=" + ",".join(LEGACY_FIELDS), _FORMAT)
# Which "used" a probe reports: v2 and nvidia-smi leave the reserved memory out, v1 not.
NVML_V2, NVML_V1, NVIDIA_SMI = "nvml-v2", "nvml-v1 (used includes reserved)", "nvidia-smi"
_MISSING = {"[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", ""}
_HINTS = {
    "version mismatch": "the driver was upgraded without a reboot: reboot the host",
    "couldn't communicate": "the NVIDIA kernel module is not loaded",
}


@dataclass(frozen=True)
class GpuMemory:
    """Memory of one GPU as the driver reports it, in MiB (None = not reported)."""

    index: int
    name: str
    uuid: str | None
    total_mib: int | None
    used_mib: int | None
    reserved_mib: int | None = None

    @property
    def usable_mib(self) -> int | None:
        """What allocations can get: total minus the driver's reserved memory."""
        if self.total_mib is None or self.reserved_mib is None:
            return None
        return self.total_mib - self.reserved_mib

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usable_mib": self.usable_mib}


def _value(cell: str) -> str | None:
    cell = cell.strip()
    return None if cell in _MISSING else cell


def _mib(cell: str) -> int | None:
    value = _value(cell)
    if value is None:
        return None
    number, _, unit = value.partition(" ")
    scale = {"": 1, "MiB": 1, "GiB": 1024, "KiB": 1 / 1024}.get(unit.strip())
    if scale is None:
        raise BenchError(f"nvidia-smi: unexpected memory unit in {cell!r}")
    return round(float(number) * scale)


def _header_key(cell: str) -> str:
    return cell.strip().split(" [", 1)[0]


def parse_query_gpu(text: str, fields: tuple[str, ...] = QUERY_FIELDS) -> list[GpuMemory]:
    """Parse `nvidia-smi --query-gpu=<fields> --format=csv[,noheader][,nounits]`."""
    rows = [row for row in csv.reader(text.splitlines(), skipinitialspace=True) if row]
    if rows and _header_key(rows[0][0]) == fields[0] and not rows[0][0].strip().isdigit():
        fields = tuple(_header_key(cell) for cell in rows[0])
        rows = rows[1:]
    gpus = []
    for row in rows:
        if len(row) != len(fields):
            raise BenchError(f"nvidia-smi: expected {len(fields)} fields, got {row!r}")
        cell = dict(zip(fields, row))
        gpus.append(GpuMemory(
            index=int(cell["index"]), name=(_value(cell.get("name", "")) or "unknown"),
            uuid=_value(cell.get("uuid", "")), total_mib=_mib(cell.get("memory.total", "")),
            used_mib=_mib(cell.get("memory.used", "")),
            reserved_mib=_mib(cell.get("memory.reserved", ""))))
    return gpus


def read_nvidia_smi(binary: str = "nvidia-smi", timeout_s: float = 20.0) -> list[GpuMemory]:
    """Run nvidia-smi and parse its CSV; raise BenchError with a hint when it fails."""
    path = shutil.which(binary)
    if path is None:
        raise BenchError("nvidia-smi not found: the NVIDIA driver is not installed")
    proc = subprocess.run([path, *NVIDIA_SMI_ARGS], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    fields = QUERY_FIELDS
    if proc.returncode == 2 and "memory.reserved" in proc.stdout + proc.stderr:
        proc = subprocess.run([path, *LEGACY_ARGS], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        fields = LEGACY_FIELDS
    if proc.returncode != 0:
        message = (proc.stdout + proc.stderr).strip()
        hint = next((h for k, h in _HINTS.items() if k in message), "")
        raise BenchError(f"nvidia-smi failed (exit {proc.returncode}): {message}"
                         + (f" ({hint})" if hint else ""))
    return parse_query_gpu(proc.stdout, fields)


def read_pynvml() -> list[GpuMemory]:
    """Read memory through NVML (package nvidia-ml-py); ImportError when not installed."""
    import pynvml  # type: ignore[import-not-found, import-untyped]

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise BenchError(f"NVML could not start: {exc}") from None
    try:
        return _read_nvml_devices(pynvml)
    except pynvml.NVMLError as exc:
        raise BenchError(f"NVML could not read the GPUs: {exc}") from None
    finally:
        pynvml.nvmlShutdown()


def nvml_memory(pynvml: Any, handle: Any) -> tuple[int | None, int | None, int | None]:
    """(total, used, reserved) bytes: v2 where the driver has it, else v1 (reserved None). A GPU without memory of
    its own (unified memory: the DGX Spark's GB10, where nvidia-smi prints [N/A]) answers NOT_SUPPORTED to both:
    all three None, as nvidia-smi's [N/A], and the other GPUs are still read."""
    version = getattr(pynvml, "nvmlMemory_v2", None)
    if version is not None:
        try:
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle, version=version)
            return int(mem.total), int(mem.used), int(mem.reserved)
        except pynvml.NVMLError as exc:
            absent = {getattr(pynvml, name, None) for name in (
                "NVML_ERROR_FUNCTION_NOT_FOUND", "NVML_ERROR_NOT_SUPPORTED",
                "NVML_ERROR_ARGUMENT_VERSION_MISMATCH")}
            if getattr(exc, "value", None) not in absent:
                raise
    try:
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
    except pynvml.NVMLError as exc:
        if getattr(exc, "value", None) != getattr(pynvml, "NVML_ERROR_NOT_SUPPORTED", None):
            raise
        return None, None, None
    return int(mem.total), int(mem.used), None


def _mib_of(value: int | None) -> int | None:
    return None if value is None else value // 2**20


def _read_nvml_devices(pynvml: Any) -> list[GpuMemory]:
    gpus = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        total, used, reserved = nvml_memory(pynvml, handle)
        name, uuid = pynvml.nvmlDeviceGetName(handle), pynvml.nvmlDeviceGetUUID(handle)
        gpus.append(GpuMemory(
            index=index, name=name.decode() if isinstance(name, bytes) else name,
            uuid=uuid.decode() if isinstance(uuid, bytes) else uuid,
            total_mib=_mib_of(total), used_mib=_mib_of(used), reserved_mib=_mib_of(reserved)))
    return gpus


def memory_api(source: str, gpus: list[GpuMemory]) -> str:
    """Which figure "used" is: NVML v2 / nvidia-smi (reserved apart) or NVML v1 (included). GPUs that report no
    memory at all (unified memory) say nothing about it and are left out of the question."""
    if source != "pynvml":
        return NVIDIA_SMI
    reporting = [g for g in gpus if g.total_mib is not None]
    return NVML_V1 if any(g.reserved_mib is None for g in reporting) else NVML_V2


def probe(prefer: str = "auto") -> dict[str, Any]:
    """Read every GPU's memory: {"source", "memory_api", "gpus": [...], "error"}; never raises.

    `prefer`: "auto" (pynvml when importable, else nvidia-smi), "pynvml" or "nvidia-smi".
    """
    source = prefer
    try:
        if prefer in ("auto", "pynvml"):
            try:
                source = "pynvml"
                gpus = read_pynvml()
            except ImportError:
                if prefer == "pynvml":
                    raise BenchError("pynvml is not installed (pip install nvidia-ml-py)")
                source, gpus = "nvidia-smi", read_nvidia_smi()
        else:
            gpus = read_nvidia_smi()
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        return {"source": source, "memory_api": None, "gpus": [], "error": str(exc)}
    return {"source": source, "memory_api": memory_api(source, gpus),
            "gpus": [g.as_dict() for g in gpus], "error": None}
