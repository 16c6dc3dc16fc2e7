"""Pure parsers of what a host prints, one per source, tested with real outputs
(../shared/reference/host-outputs.md): nvidia-smi CSV and -L, lspci -n, sysfs PCI
attributes, /proc/meminfo, df -P, os-release, /proc/driver/nvidia/version, ollama."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

NVIDIA_VENDOR = "10de"
NA = "[N/A]"
# The fields detect asks nvidia-smi for, in this order.
SMI_FIELDS = ("index", "name", "uuid", "memory.total", "pci.bus_id", "pci.device_id", "driver_version")
_LOST = re.compile(r"Unable to determine the device handle for GPU\s*([0-9A-Fa-f]+:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])")
_LSPCI = re.compile(r"^(?P<slot>(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+"
                    r"(?P<cls>[0-9a-fA-F]{4}):\s+(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})")
_DRIVER = re.compile(r"NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s")
_OLLAMA = re.compile(r"ollama version is\s+(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class SmiGpu:
    """One card as nvidia-smi --query-gpu reports it."""

    index: int
    name: str
    uuid: str | None
    memory_mib: int | None
    bus_id: str | None
    device_id: str | None
    driver_version: str | None


@dataclass(frozen=True)
class PciDevice:
    """One NVIDIA display controller (class 03xx) on the PCI bus."""

    bus_id: str
    device_id: str


def bus_id(text: str) -> str:
    """A PCI address as DDDD:BB:DD.F, lowercase: nvidia-smi's 8-digit domain and
    lspci's missing one both become 4 digits."""
    parts = text.strip().lower().split(":")
    if len(parts) == 2:
        parts = ["0000", *parts]
    return f"{parts[0][-4:].rjust(4, '0')}:{parts[1]}:{parts[2]}"


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text in (NA, "N/A", "[Not Supported]", "") else text


def _mib(text: str) -> int | None:
    value = _value(text)
    if value is None:
        return None
    number = value.split()[0]  # "24564 MiB" without nounits
    return int(float(number)) if re.fullmatch(r"[0-9.]+", number) else None


def _device_id(text: str) -> str | None:
    """`0x268410DE` (device, then vendor) -> `2684`."""
    value = _value(text)
    if value is None or not re.fullmatch(r"0x[0-9A-Fa-f]{8}", value):
        return None
    return value[2:6].lower()


def nvidia_smi_csv(text: str) -> list[SmiGpu]:
    """`nvidia-smi --query-gpu=<SMI_FIELDS> --format=csv,noheader[,nounits]` rows."""
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(SMI_FIELDS) or not cells[0].isdigit():
            continue  # a header, an error line, or a card NVML cannot read
        index, name, uuid, memory, bus, device, driver = cells
        gpus.append(SmiGpu(index=int(index), name=name, uuid=_value(uuid), memory_mib=_mib(memory),
                           bus_id=bus_id(bus) if _value(bus) else None, device_id=_device_id(device),
                           driver_version=_value(driver)))
    return gpus


def lost_gpus(text: str) -> list[str]:
    """Bus ids `nvidia-smi -L` could not open ("Unable to determine the device handle")."""
    return [bus_id(m.group(1)) for m in _LOST.finditer(text)]


def lspci_n(text: str) -> list[PciDevice]:
    """NVIDIA display controllers in `lspci -n` (or -nn's first columns) output."""
    found = []
    for line in text.splitlines():
        match = _LSPCI.match(line.strip())
        if match and match["vendor"].lower() == NVIDIA_VENDOR and match["cls"].startswith("03"):
            found.append(PciDevice(bus_id=bus_id(match["slot"]), device_id=match["device"].lower()))
    return found


def sysfs_pci(text: str) -> list[PciDevice]:
    """Lines `ADDRESS VENDOR DEVICE CLASS` read from /sys/bus/pci/devices/*/{vendor,device,class}."""
    found = []
    for line in text.splitlines():
        cells = line.split()
        if len(cells) != 4:
            continue
        address, vendor, device, cls = (c.lower().removeprefix("0x") for c in cells)
        if vendor == NVIDIA_VENDOR and cls.startswith("03"):
            found.append(PciDevice(bus_id=bus_id(address), device_id=device[-4:]))
    return found


def meminfo_mib(text: str) -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def df_free_gib(text: str) -> float | None:
    """Available space of `df -Pk PATH` (POSIX format, 1K blocks)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    cells = lines[-1].split()
    return round(int(cells[3]) / 1024 / 1024, 1) if len(cells) >= 6 and cells[3].isdigit() else None


def os_release(text: str) -> str | None:
    values = dict(re.findall(r'^([A-Z_]+)="?([^"\n]*)"?$', text, re.MULTILINE))
    return values.get("PRETTY_NAME") or " ".join(v for v in (values.get("ID"), values.get("VERSION_ID")) if v) or None


def proc_driver_version(text: str) -> str | None:
    """The version in /proc/driver/nvidia/version, proprietary and open kernel modules alike."""
    match = _DRIVER.search(text)
    return match.group(1) if match else None


def ollama_version(text: str) -> str | None:
    """`ollama --version` (the server's line; a client-mismatch warning may follow)."""
    match = _OLLAMA.search(text)
    return match.group(1) if match else None


def ollama_models(text: str) -> list[str] | None:
    """Model names from /api/tags JSON; None when the server did not answer."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return None
    return sorted(str(m.get("name") or m.get("model")) for m in data["models"] if isinstance(m, dict))
