"""The simulated NVIDIA hardware seam of a sandbox host (docs/simulation-seam.md).

Builds `/etc/coderig-sim/gpus.json` from the GPU catalog and installs the simulated
driver into a host's root: `nvidia-smi`, `libnvidia-ml.so.1` (C, built here with
gcc), `/proc/driver/nvidia/version` (through the /proc/driver bind mount) and a
`lspci` that lists the cards. Cards without driver: gpus.json and lspci only.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.resources import DATA_DIR
from coderig_deploy.sandbox import rootfs

GPU_DIR = Path(__file__).resolve().parent / "gpu"
LIBNVML_SOURCE = GPU_DIR / "libnvidia_ml.c"
LIB_PATH = "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
# /proc belongs to the host's kernel view and nspawn cannot bind into it from outside,
# so a unit in the host ("the kernel module loads at boot") bind-mounts this
# directory over /proc/driver, read-only.
PROC_DRIVER_DIR = "var/lib/coderig-sim/proc-driver"
DRIVER_UNIT = "coderig-sim-nvidia.service"


class GpuLike(Protocol):
    """What the simulation needs of a catalog GPU (catalog.GpuSpec has it)."""

    @property
    def slug(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def vram_mib(self) -> int: ...
    @property
    def bandwidth_gbs(self) -> float: ...
    @property
    def compute_capability(self) -> str: ...
    @property
    def pci_device_id(self) -> str: ...


@cache
def driver_facts() -> dict[str, Any]:
    """The simulated driver's version strings (data/sandbox-driver.json)."""
    facts: dict[str, Any] = json.loads((DATA_DIR / "sandbox-driver.json").read_text())
    return facts


@cache
def lspci_names() -> dict[str, str]:
    """pci_device_id -> `lspci` device name (data/sandbox-pci-names.tsv)."""
    names = {}
    for line in (DATA_DIR / "sandbox-pci-names.tsv").read_text().splitlines()[1:]:
        if line and not line.startswith("#") and not line.startswith("pci_device_id"):
            device, name = line.split("\t", 1)
            names[device.lower()] = name
    return names


def gpu_uuid(seed: str) -> str:
    """A stable NVIDIA-style UUID (``GPU-xxxxxxxx-...``) for one simulated card."""
    return "GPU-" + str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16]))


def gpus_document(spec: GpuLike | None, count: int, seed: str, missing: int = 0) -> dict[str, Any]:
    """The content of /etc/coderig-sim/gpus.json for `count` cards of `spec`; the last
    `missing` of them are dead: listed under `missing_gpus`, which only lspci shows
    (and `nvidia-smi -L` as a card it cannot open)."""
    facts = driver_facts()
    gpus = []
    for index in range(count if spec else 0):
        assert spec is not None
        device = spec.pci_device_id.lower()
        gpus.append({
            "index": index, "slug": spec.slug, "name": spec.name,
            "uuid": gpu_uuid(f"{seed}/{index}"), "memory_total_mib": spec.vram_mib,
            "bandwidth_gbs": spec.bandwidth_gbs, "compute_cap": str(spec.compute_capability),
            "pci_device_id": device, "bus_id": f"00000000:{index + 1:02X}:00.0",
            "lspci_name": lspci_names().get(device, f"Device {device}"),
            "idle_used_mib": facts["idle_used_mib"], "reserved_mib": facts["reserved_mib"],
        })
    working = len(gpus) - min(missing, len(gpus))
    dead = {"missing_gpus": gpus[working:]} if working < len(gpus) else {}
    return {
        **dead,
        "driver_version": facts["driver_version"], "nvml_version": facts["nvml_version"],
        "cuda_version": facts["cuda_version"], "open_kernel_module": facts["open_kernel_module"],
        "gpus": gpus[:working],
    }


def proc_version_text() -> str:
    facts = driver_facts()
    return f"{facts['proc_version_line']}\n{facts['gcc_version_line']}\n"


def build_libnvml() -> Path:
    """Compile the fake libnvidia-ml.so.1 once per source version (cached)."""
    source = LIBNVML_SOURCE.read_bytes()
    target = rootfs.cache_dir() / f"libnvidia-ml-{hashlib.sha256(source).hexdigest()[:12]}.so.1"
    if target.is_file():
        return target
    if shutil.which("gcc") is None:
        raise EnvironmentProblem("gcc is missing (it builds the simulated libnvidia-ml): "
                                 "apt-get install gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    proc = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-Wl,-soname,libnvidia-ml.so.1",
         "-o", str(partial), str(LIBNVML_SOURCE)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"building libnvidia-ml.so.1 failed: {proc.stderr.strip()}")
    partial.rename(target)
    return target


def _install(source: Path, root: Path, relative: str, mode: int) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(mode)


def install(root: Path, document: dict[str, Any], driver_installed: bool) -> None:
    """Put the simulated cards (and, if installed, their driver) into a host root."""
    sim = root / "etc/coderig-sim"
    sim.mkdir(parents=True, exist_ok=True)
    (sim / "gpus.json").write_text(json.dumps(document, indent=2) + "\n")
    # The simulator runs as the unprivileged `ollama` user and publishes GPU memory use in
    # /run/coderig-sim (a tmpfs): systemd-tmpfiles creates it at every boot.
    tmpfiles = root / "etc/tmpfiles.d/coderig-sim.conf"
    tmpfiles.parent.mkdir(parents=True, exist_ok=True)
    tmpfiles.write_text("d /run/coderig-sim 1777 root root -\n")
    _install(GPU_DIR / "lspci.py", root, "usr/bin/lspci", 0o755)
    if not (driver_installed and (document["gpus"] or document.get("missing_gpus"))):
        return
    _install(GPU_DIR / "nvidia_smi.py", root, "usr/bin/nvidia-smi", 0o755)
    _install(build_libnvml(), root, LIB_PATH, 0o644)
    # Refresh the host's ld.so.cache so `ldconfig -p` lists it like a real install.
    subprocess.run(["ldconfig", "-r", str(root)], capture_output=True, check=False)
    version = root / PROC_DRIVER_DIR / "nvidia/version"
    version.parent.mkdir(parents=True, exist_ok=True)
    version.write_text(proc_version_text())
    _install(GPU_DIR / DRIVER_UNIT, root, f"etc/systemd/system/{DRIVER_UNIT}", 0o644)
    wants = root / "etc/systemd/system/sysinit.target.wants" / DRIVER_UNIT
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to(f"/etc/systemd/system/{DRIVER_UNIT}")
