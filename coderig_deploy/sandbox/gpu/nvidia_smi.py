#!/usr/bin/python3
"""Simulated `nvidia-smi` of a coderig sandbox host (stdlib only; docs/simulation-seam.md).

Answers like the real tool for the cards in /etc/coderig-sim/gpus.json, with memory
in use read from /run/coderig-sim/usage.json (written by the Ollama simulator):
`-L`, `--version`, the default table, `--query-gpu=... --format=csv[,noheader][,nounits]`,
`--query-compute-apps=...`, `-pm 0|1` and `-i/--id`. Pure functions take the documents as
arguments so the controller's unit tests exercise the same code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

GPUS_JSON = os.environ.get("CODERIG_SIM_GPUS", "/etc/coderig-sim/gpus.json")
USAGE_JSON = os.environ.get("CODERIG_SIM_USAGE", "/run/coderig-sim/usage.json")
# Persistence mode lives in the driver until the next reboot: a file on the /run tmpfs.
PERSISTENCE_FILE = os.environ.get("CODERIG_SIM_PERSISTENCE", "/run/coderig-sim/persistence-mode")
NA = "[N/A]"
NO_DRIVER = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
             "Make sure that the latest NVIDIA driver is installed and running.")


class QueryError(Exception):
    """A query nvidia-smi rejects (exit 2)."""


def used_by_gpu(usage: dict[str, Any]) -> dict[int, int]:
    """MiB the simulator has loaded per GPU index."""
    used: dict[int, int] = {}
    for entry in usage.get("gpus", []) or []:
        used[int(entry["index"])] = used.get(int(entry["index"]), 0) + int(entry["used_mib"])
    return used


def reserved(gpu: dict[str, Any]) -> int:
    """MiB the driver keeps for itself: in total, in neither used nor free (NVML v2)."""
    return min(int(gpu["memory_total_mib"]), int(gpu.get("reserved_mib", 0)))


def memory(gpu: dict[str, Any], usage: dict[str, Any]) -> tuple[int, int, int]:
    """(total, used, free) MiB of one card as nvidia-smi reports it (NVML v2 figures):
    used is the idle baseline plus what is loaded; free leaves out the reserved memory."""
    total, kept = int(gpu["memory_total_mib"]), reserved(gpu)
    loaded = int(gpu.get("idle_used_mib", 0)) + used_by_gpu(usage).get(gpu["index"], 0)
    used = min(total - kept, loaded)
    return total, used, total - kept - used


def _gpu_fields(doc: dict[str, Any], gpu: dict[str, Any], usage: dict[str, Any],
                ) -> dict[str, tuple[str, str]]:
    """Every supported field: name -> (value, unit); unit '' when none."""
    total, used, free = memory(gpu, usage)
    busy = used_by_gpu(usage).get(gpu["index"], 0) > 0
    device = f"0x{gpu['pci_device_id'].upper()}10DE"
    values: dict[str, tuple[str, str]] = {
        "index": (str(gpu["index"]), ""), "name": (gpu["name"], ""),
        "uuid": (gpu["uuid"], ""), "serial": (NA, ""),
        "pci.bus_id": (gpu["bus_id"], ""), "pci.device_id": (device, ""),
        "pci.sub_device_id": (NA, ""), "pci.domain": ("0x0000", ""),
        "pci.bus": (f"0x{gpu['bus_id'].split(':')[1]}", ""),
        "memory.total": (str(total), "MiB"), "memory.used": (str(used), "MiB"),
        "memory.free": (str(free), "MiB"), "memory.reserved": (str(reserved(gpu)), "MiB"),
        "driver_version": (doc["driver_version"], ""), "compute_cap": (gpu["compute_cap"], ""),
        "count": (str(len(doc["gpus"])), ""), "persistence_mode": (persistence_mode(), ""),
        "display_mode": ("Disabled", ""), "display_active": ("Disabled", ""),
        "pstate": ("P2" if busy else "P8", ""), "compute_mode": ("Default", ""),
        "mig.mode.current": (NA, ""), "vbios_version": (NA, ""),
        "utilization.gpu": (NA, "%"), "utilization.memory": (NA, "%"),
        "temperature.gpu": (NA, ""), "fan.speed": (NA, "%"), "power.draw": (NA, "W"),
        "power.limit": (NA, "W"), "clocks.sm": (NA, "MHz"), "clocks.mem": (NA, "MHz"),
        "timestamp": (time.strftime("%Y/%m/%d %H:%M:%S.000"), ""),
    }
    aliases = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id",
               "compute_capability": "compute_cap", "temperature.gpu.tlimit": "temperature.gpu"}
    for alias, target in aliases.items():
        values[alias] = values[target]
    return values


def format_csv(header: list[str], rows: list[list[tuple[str, str]]], options: set[str]) -> str:
    """Render rows the way `--format=csv[,noheader][,nounits]` does."""
    lines = []
    if "noheader" not in options:
        units = [unit for _, unit in rows[0]] if rows else [""] * len(header)
        lines.append(", ".join(f"{name} [{unit}]" if unit else name
                               for name, unit in zip(header, units)))
    for row in rows:
        cells = [value if (not unit or value == NA or "nounits" in options) else
                 f"{value} {unit}" for value, unit in row]
        lines.append(", ".join(cells))
    return "\n".join(lines) + ("\n" if lines else "")


def query_gpu(doc: dict[str, Any], usage: dict[str, Any], fields: list[str],
              options: set[str], gpus: list[dict[str, Any]]) -> str:
    """The output of `--query-gpu=FIELDS --format=csv,...`."""
    rows = []
    for gpu in gpus:
        values = _gpu_fields(doc, gpu, usage)
        for field in fields:
            if field not in values:
                raise QueryError(f'Field "{field}" is not a valid field to query.')
        rows.append([values[f] for f in fields])
    if not gpus:
        return "No devices were found\n"
    return format_csv(fields, rows, options)


def query_apps(doc: dict[str, Any], usage: dict[str, Any], fields: list[str],
               options: set[str]) -> str:
    """The output of `--query-compute-apps=FIELDS --format=csv,...`."""
    by_index = {g["index"]: g for g in doc["gpus"]}
    rows = []
    for proc in usage.get("processes", []) or []:
        gpu = by_index.get(int(proc.get("gpu_index", 0)), doc["gpus"][0])
        values = {"pid": (str(proc["pid"]), ""), "process_name": (proc["name"], ""),
                  "used_memory": (str(proc["used_mib"]), "MiB"),
                  "used_gpu_memory": (str(proc["used_mib"]), "MiB"),
                  "gpu_uuid": (gpu["uuid"], ""), "gpu_bus_id": (gpu["bus_id"], ""),
                  "gpu_name": (gpu["name"], "")}
        for field in fields:
            if field not in values:
                raise QueryError(f'Field "{field}" is not a valid field to query.')
        rows.append([values[f] for f in fields])
    if not rows:
        header = [] if "noheader" in options else [", ".join(fields)]
        return "".join(line + "\n" for line in header)
    return format_csv(fields, rows, options)


def list_gpus(gpus: list[dict[str, Any]]) -> str:
    """`nvidia-smi -L`."""
    return "".join(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})\n" for g in gpus)


def lost_gpus(missing: list[dict[str, Any]]) -> str:
    """`nvidia-smi -L`'s line for a card on the bus whose handle the driver cannot get."""
    return "".join(f"Unable to determine the device handle for GPU{g['bus_id']}: Unknown Error\n"
                   for g in missing)


def version_text(doc: dict[str, Any]) -> str:
    """`nvidia-smi --version` (pre-610 wording)."""
    nvml = doc.get("nvml_version", doc["driver_version"]).split(".", 1)[-1]
    return (f"NVIDIA-SMI version  : {doc['driver_version']}\n"
            f"NVML version        : {'.'.join(nvml.split('.')[:2])}\n"
            f"DRIVER version      : {doc['driver_version']}\n"
            f"CUDA Version        : {doc['cuda_version']}\n")


def _short_name(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def table(doc: dict[str, Any], usage: dict[str, Any], gpus: list[dict[str, Any]],
          now: str | None = None) -> str:
    """The default table in the 570 layout (91 columns; long names truncated)."""
    bar = "+" + "-" * 89 + "+"
    cell = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
    head = (f"| NVIDIA-SMI {doc['driver_version']:<22}Driver Version: {doc['driver_version']:<15}"
            f"CUDA Version: {doc['cuda_version']:<10}|")
    lines = [f"{now or time.strftime('%a %b %e %H:%M:%S %Y')}       ", bar, head,
             "|" + cell[1:],
             "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
             "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
             "|                                         |                        |               MIG M. |",
             "|=========================================+========================+======================|"]
    for gpu in gpus:
        total, used, _ = memory(gpu, usage)
        pstate = "P2" if used_by_gpu(usage).get(gpu["index"], 0) > 0 else "P8"
        name = _short_name(gpu["name"], 29)
        lines += [
            (f"| {gpu['index']:>3}  {name:<29}{'Off':>5} |{gpu['bus_id'] + ' Off':>23} |"
             f"{'Off':>21} |"),
            (f"| {'N/A':<5}{'N/A':<7}{pstate:<14}{'N/A /  N/A':>13} |"
             f"{f'{used}MiB /  {total}MiB':>23} |{'N/A':>9}{'Default':>12} |"),
            f"| {'':<39} | {'':<22} | {'N/A':>20} |",
            cell]
    lines += [" " * 91, bar,
              "| Processes:" + " " * 78 + "|",
              "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
              "|        ID   ID                                                               Usage      |",
              "|" + "=" * 89 + "|"]
    procs = usage.get("processes", []) or []
    if not procs:
        lines.append("|  No running processes found" + " " * 61 + "|")
    for proc in procs:
        pname = _short_name(proc["name"], 36)
        lines.append(f"| {proc.get('gpu_index', 0):>4}   N/A  N/A  {proc['pid']:>14}      C   "
                     f"{pname:<36} {str(proc['used_mib']) + 'MiB':>9} |")
    lines.append(bar)
    return "\n".join(lines) + "\n"


def select(gpus: list[dict[str, Any]], ids: str | None) -> list[dict[str, Any]]:
    """Cards picked by `-i` (indices, UUIDs or bus ids, comma separated)."""
    if not ids:
        return gpus
    wanted = [i.strip() for i in ids.split(",")]
    picked = [g for g in gpus if str(g["index"]) in wanted or g["uuid"] in wanted
              or g["bus_id"].lower() in (w.lower() for w in wanted)]
    if len(picked) != len(wanted):
        raise QueryError("No devices were found")
    return picked


def persistence_mode() -> str:
    try:
        with open(PERSISTENCE_FILE) as handle:
            return "Enabled" if handle.read().strip() == "1" else "Disabled"
    except OSError:
        return "Disabled"


def set_persistence_mode(value: str, gpus: list[dict[str, Any]]) -> tuple[int, str]:
    """`nvidia-smi -pm 0|1`: root only, as with the real driver."""
    if value not in ("0", "1"):
        raise QueryError("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.")
    state = "Enabled" if value == "1" else "Disabled"
    try:
        with open(PERSISTENCE_FILE, "w") as handle:
            handle.write(value + "\n")
    except OSError:
        lines = [f"Unable to set persistence mode for GPU {g['bus_id']}: Insufficient Permissions" for g in gpus]
        return 4, "\n".join(lines) + "\nTerminating early due to previous errors.\n"
    lines = [f"{state} persistence mode for GPU {g['bus_id']}." for g in gpus]
    return 0, "\n".join(lines) + "\nAll done.\n"


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as handle:
            text = handle.read()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return None


def _options(argv: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        key, eq, value = arg.partition("=")
        valued = ("-i", "--id", "--query-gpu", "--query-compute-apps", "--format", "-pm", "--persistence-mode")
        if key in valued and not eq:
            value = next(args, "")
        if key in ("-L", "--list-gpus", "--version", "-h", "--help"):
            value = "1"
        elif key not in valued:
            raise QueryError("Invalid combination of input arguments. "
                             "Please run 'nvidia-smi -h' for help.")
        canonical = {"--id": "-i", "--list-gpus": "-L", "--persistence-mode": "-pm"}
        opts[canonical.get(key, key)] = value
    return opts


def run(argv: list[str], doc: dict[str, Any] | None, usage: dict[str, Any]) -> tuple[int, str]:
    """(exit code, output) of one nvidia-smi invocation."""
    if doc is None or not doc.get("gpus"):
        return 9, NO_DRIVER + "\n"
    try:
        opts = _options(argv)
        gpus = select(doc["gpus"], opts.get("-i"))
        fmt = {o.strip() for o in opts.get("--format", "").split(",") if o.strip()}
        if "--version" in opts:
            return 0, version_text(doc)
        if "-L" in opts:
            return 0, list_gpus(gpus) + lost_gpus(doc.get("missing_gpus", []))
        if "-pm" in opts:
            return set_persistence_mode(opts["-pm"], gpus)
        for key, query in (("--query-gpu", query_gpu), ("--query-compute-apps", None)):
            if key in opts:
                if "csv" not in fmt:
                    return 2, '"--format" must be specified when querying.\n' \
                        if "--format" not in opts else "Invalid format.\n"
                fields = [f.strip() for f in opts[key].split(",") if f.strip()]
                if query is not None:
                    return 0, query_gpu(doc, usage, fields, fmt, gpus)
                return 0, query_apps(doc, usage, fields, fmt)
        return 0, table(doc, usage, gpus)
    except QueryError as exc:
        return (6 if str(exc) == "No devices were found" else 2), f"{exc}\n"


def main() -> int:
    code, text = run(sys.argv[1:], _load(GPUS_JSON), _load(USAGE_JSON) or {})
    sys.stdout.write(text)  # the real tool prints its errors on stdout too
    return code


if __name__ == "__main__":
    sys.exit(main())
