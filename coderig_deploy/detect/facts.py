"""HostFacts: what detect found on one host, from the probe's sections (pure).

GPUs come from nvidia-smi when a driver answers; the PCI bus (lspci -n, else sysfs)
adds the cards the driver does not see (a dead or unpowered card) and, without a
driver, is the only source. PCI ids map to the catalog (data/gpus.tsv pci_device_id and
more_pci_device_ids); an id the catalog does not know is reported as unknown, not guessed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coderig_deploy.catalog import Catalog, GpuSpec, load_catalog
from coderig_deploy.detect import parse


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectedGpu(_Strict):
    bus_id: str | None = Field(description="PCI address DDDD:BB:DD.F")
    pci_device_id: str | None = Field(description="Device id under vendor 10de, 4 hex digits")
    slug: str | None = Field(description="Catalog GPU slug; None when the catalog does not know the card")
    name: str = Field(description="nvidia-smi's name, the catalog's, or `unknown 10de:XXXX`")
    vram_mib: int | None = Field(description="nvidia-smi's memory.total, else the catalog's")
    source: Literal["nvidia-smi", "lspci", "sysfs"]
    usable: bool = Field(description="False: on the PCI bus but the loaded driver does not see it")


class HostFacts(_Strict):
    host: str
    reachable: bool = True
    error: str | None = Field(default=None, description="Why the host could not be read")
    gpus: list[DetectedGpu] = Field(default_factory=list)
    driver_version: str | None = None
    ram_mib: int | None = None
    models_dir: str | None = None
    disk_free_gib: float | None = Field(default=None, description="Free at the model store's filesystem")
    os: str | None = None
    ollama_version: str | None = None
    models: list[str] | None = Field(default=None, description="Installed models; None: no server answered")

    def usable_by_slug(self) -> dict[str, int]:
        """How many usable cards of each known GPU model the host has."""
        counts: dict[str, int] = {}
        for gpu in self.gpus:
            if gpu.usable and gpu.slug:
                counts[gpu.slug] = counts.get(gpu.slug, 0) + 1
        return counts

    def _uncatalogued(self, old: bool) -> list[str]:
        return sorted({f"10de:{g.pci_device_id}" for g in self.gpus
                       if g.slug is None and g.pci_device_id and pre_turing(g.pci_device_id) == old})

    @property
    def unknown_pci_ids(self) -> list[str]:
        """Ids of Turing's range or later the catalog does not know (not guessed)."""
        return self._uncatalogued(old=False)

    @property
    def pre_turing_pci_ids(self) -> list[str]:
        """Ids of cards older than Turing (pre_turing): known to be left out, not unknown."""
        return self._uncatalogued(old=True)

    @property
    def not_seen_by_driver(self) -> list[DetectedGpu]:
        return [g for g in self.gpus if not g.usable]


# NVIDIA's PCI device ids rise with each generation (pci.ids): Turing's first die, TU102, is 1e02, and every id below
# 1e00 is an older one (Volta's GV100 1d81-1df6, Pascal's 15f7-1d56, Maxwell, Kepler); TU117 (1f8x-1f9x) and TU116
# (21xx) are above it.
FIRST_TURING_ID = 0x1E00


def pre_turing(device_id: str) -> bool:
    """A card of a generation before Turing (Pascal, Volta or older), which the catalog leaves out: llama.cpp runs
    their prompts on other kernels than the int8 tensor-core ones the planner models (dp4a on Pascal, FP16 cuBLAS on
    Volta), and NVIDIA's open kernel modules, the driver role's default, need Turing or newer."""
    try:
        return int(device_id, 16) < FIRST_TURING_ID
    except ValueError:
        return False


def by_pci_id(catalog: Catalog, device_id: str) -> GpuSpec | None:
    return next((g for g in catalog.gpus.values() if device_id.lower() in g.pci_device_ids), None)


def gpus_from(found: dict[str, str], catalog: Catalog) -> tuple[list[DetectedGpu], str | None]:
    """The host's cards and the driver version (None: no driver answered)."""
    smi = parse.nvidia_smi_csv(found.get("nvidia-smi", ""))
    lspci = parse.lspci_n(found.get("lspci", ""))
    pci, pci_source = (lspci, "lspci") if lspci else (parse.sysfs_pci(found.get("sysfs", "")), "sysfs")
    gpus = [_from_smi(g, catalog) for g in smi]
    seen = {g.bus_id for g in smi}
    for device in pci:
        if device.bus_id in seen:
            continue
        spec = by_pci_id(catalog, device.device_id)
        gpus.append(DetectedGpu(bus_id=device.bus_id, pci_device_id=device.device_id,
                                slug=spec.slug if spec else None,
                                name=spec.name if spec else f"unknown 10de:{device.device_id}",
                                vram_mib=spec.vram_mib if spec else None, source=pci_source,  # type: ignore[arg-type]
                                usable=not smi))  # with a driver loaded, a card it does not list is dead
    listed = seen | {d.bus_id for d in pci}
    gpus += [DetectedGpu(bus_id=bus, pci_device_id=None, slug=None, name="a card nvidia-smi cannot open",
                         vram_mib=None, source="nvidia-smi", usable=False)
             for bus in parse.lost_gpus(found.get("nvidia-smi-list", "")) if bus not in listed]
    driver = next((g.driver_version for g in smi if g.driver_version), None) if smi else None
    return gpus, driver or (parse.proc_driver_version(found.get("driver", "")) if smi else None)


def _from_smi(gpu: parse.SmiGpu, catalog: Catalog) -> DetectedGpu:
    spec = catalog.gpu_by_name(gpu.name, gpu.memory_mib) or (
        by_pci_id(catalog, gpu.device_id) if gpu.device_id else None)
    return DetectedGpu(bus_id=gpu.bus_id, pci_device_id=gpu.device_id, slug=spec.slug if spec else None,
                       name=gpu.name, vram_mib=gpu.memory_mib or (spec.vram_mib if spec else None),
                       source="nvidia-smi", usable=True)


def host_facts(host: str, found: dict[str, str], catalog: Catalog | None = None) -> HostFacts:
    """Everything the probe's sections say about `host`."""
    gpus, driver = gpus_from(found, catalog or load_catalog())
    models_dir = found.get("models-dir", "").strip() or None
    return HostFacts(
        host=host, gpus=gpus, driver_version=driver, ram_mib=parse.meminfo_mib(found.get("meminfo", "")),
        models_dir=models_dir, disk_free_gib=parse.df_free_gib(found.get("df", "")),
        os=parse.os_release(found.get("os-release", "")),
        ollama_version=parse.ollama_version(found.get("ollama-version", "")),
        models=parse.ollama_models(found.get("ollama-tags", "")))


def unreachable(host: str, error: str) -> HostFacts:
    return HostFacts(host=host, reachable=False, error=error)
