"""Where a loaded model sits and how fast it runs: the project's fit model applied to
the simulated GPUs (gpus.json) and the model's own GGUF metadata.

The fit module is ``coderig_deploy.fit`` in a checkout and the copy shipped as
``_fit.py`` inside the release archive (the same file, byte for byte).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # a checkout: the project's own module
    from coderig_deploy import fit
except ImportError:  # the release archive carries a copy next to this package
    from . import _fit as fit  # type: ignore[no-redef]

from .gguf import FILE_TYPE_NAMES

MIB = 1 << 20
_CATALOG_NAME = "coderig_sim_catalog.json"


class PlacementError(Exception):
    """The model's metadata does not say enough to load it."""


@dataclass(frozen=True)
class Gpu:
    index: int
    slug: str
    memory_mib: int
    bandwidth_gbs: float


@dataclass(frozen=True)
class Placement:
    size: int  # bytes the loaded model occupies in total (ps `size`)
    size_vram: int  # bytes of it on GPUs (ps `size_vram`)
    per_gpu_mib: dict[int, int]  # GPU index -> MiB used on it
    decode_tok_s: float
    layers_on_gpu: int
    layers_total: int


def load_gpus(path: Path, driver_file: Path | None = None) -> list[Gpu]:
    """The simulated cards (docs/simulation-seam.md); none when the file is absent or
    the driver is not loaded (`driver_file` missing): Ollama then runs on the CPU."""
    if driver_file is not None and not driver_file.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, PermissionError):
        return []
    return [Gpu(int(g["index"]), str(g.get("slug", g.get("name", ""))), int(g["memory_total_mib"]),
                float(g["bandwidth_gbs"])) for g in data.get("gpus", [])]


def find_catalog(explicit: str | None = None) -> Path:
    """The catalog facts shipped with the simulator (engine constants, quant types)."""
    here = Path(__file__).resolve().parent
    for candidate in (Path(explicit) if explicit else None, here.parent / _CATALOG_NAME, here / _CATALOG_NAME):
        if candidate is not None and candidate.is_file():
            return candidate
    raise PlacementError(f"{_CATALOG_NAME} not found next to the simulator (set CODERIG_SIM_CATALOG)")


def architecture(info: dict[str, Any]) -> Any:
    """fit.Architecture from GGUF metadata (the keys /api/show reports in model_info)."""
    arch = info.get("general.architecture")
    try:
        heads = int(info[f"{arch}.attention.head_count"])
        hidden = int(info[f"{arch}.embedding_length"])
        experts = int(info.get(f"{arch}.expert_count", 0))
        ffn_key = f"{arch}.expert_feed_forward_length" if experts else f"{arch}.feed_forward_length"
        params = int(info["general.parameter_count"]) / 1e9
        return fit.Architecture(
            layers=int(info[f"{arch}.block_count"]),
            heads=heads,
            kv_heads=int(info.get(f"{arch}.attention.head_count_kv", heads)),
            hidden=hidden,
            head_dim=int(info.get(f"{arch}.attention.key_length", hidden // heads)),
            ffn=int(info[ffn_key]),
            vocab=int(info[f"{arch}.vocab_size"]),
            params_b=params,
            active_params_b=int(info.get("coderig.sim.active_parameter_count", 0)) / 1e9 or params,
            tied_embeddings=bool(info.get("coderig.sim.tied_embeddings", False)),
            experts=experts,
            experts_used=int(info.get(f"{arch}.expert_used_count", 0)),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise PlacementError(f"error loading model: GGUF metadata lacks {exc}") from exc


class Planner:
    """Computes placements with the catalog facts shipped next to the simulator."""

    def __init__(self, catalog: dict[str, Any]) -> None:
        self.catalog = catalog
        eng, rt = catalog["engine"], catalog["runtime"]
        known = {f.name for f in dataclasses.fields(fit.Engine)}
        self.engine = fit.Engine(**{  # every engine constant the catalog shipped, the runtime's where it did not
            "cuda_overhead_mib": float(rt["cuda_overhead_mib"]), "fit_margin_mib": float(rt["fit_margin_mib"]),
            "batch_size": int(rt["batch_size"]), **{k: v for k, v in eng.items() if k in known}})

    @classmethod
    def from_file(cls, path: Path) -> Planner:
        return cls(json.loads(path.read_text()))

    def quant(self, info: dict[str, Any]) -> Any:
        name = FILE_TYPE_NAMES.get(int(info.get("general.file_type", -1)), "")
        spec = self.catalog["quants"].get(name)
        if spec is None:
            raise PlacementError(f"error loading model: unsupported file type {name or info.get('general.file_type')}")
        return fit.QuantType(name, float(spec["embd_bpw"]), float(spec["output_bpw"]),
                             float(spec.get("decode_ops_per_weight", 0.0)))

    def device(self, gpu: Gpu) -> Any:
        """fit.Device of a simulated card, with the catalog's compute facts when its slug is known."""
        known = {f.name for f in dataclasses.fields(fit.Device)}
        facts = {k: v for k, v in self.catalog.get("devices", {}).get(gpu.slug, {}).items() if k in known}
        return fit.Device(f"{gpu.index}:{gpu.slug}", gpu.memory_mib, gpu.bandwidth_gbs, **facts)

    def request(self, info: dict[str, Any], file_bytes: int, gpus: list[Gpu], ctx: int,
                kv_cache: str, flash_attention: bool, parallel: int, spread: bool) -> Any:
        rt = self.catalog["runtime"]
        return fit.FitRequest(
            arch=architecture(info), quant=self.quant(info), file_bytes=file_bytes,
            devices=tuple(self.device(g) for g in gpus),
            engine=self.engine, ctx=ctx, kv_cache=kv_cache, flash_attention=flash_attention,
            parallel=parallel, spread=spread, ram_bandwidth_gbs=float(rt["system_ram_bandwidth_gbs"]),
            depth=min(int(rt["decode_depth"]), ctx),
        )

    def place(self, req: Any, gpus: list[Gpu], force_fraction: float | None = None) -> Placement:
        """Fit the model; `force_fraction` (the partial_offload switch) caps the GPU share
        by capping the layers offloaded, as Ollama's num_gpu option does.

        ps sizes as the fit model defines them (`FitResult.ps_size_bytes` and
        `ps_size_vram_bytes`); nvidia-smi's per-GPU use, written to usage.json, also
        counts the CUDA context.
        """
        result = fit.fit(req)
        slots = req.arch.layers + 1
        if gpus and force_fraction is not None and force_fraction < result.gpu_fraction:
            cap = min(round(force_fraction * slots), slots - 1)
            result = fit.fit(dataclasses.replace(req, num_gpu=cap))
        per_gpu = {g.index: round(u.used_mib) for g, u in zip(gpus, result.devices)}
        return Placement(result.ps_size_bytes, result.ps_size_vram_bytes, per_gpu, result.decode_tok_s,
                         result.layers_on_gpu, result.layers_total)
