"""The catalog: GPUs, models, quantizations and engine constants, from the data files.

Every number here is read from `coderig_deploy/data/*.tsv`, where each row names
its source. Lookups by a user's spelling raise `UnknownNameError` with the close
matches, so the CLI can say "did you mean ...".
"""

from __future__ import annotations

import csv
import difflib
import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coderig_deploy import fit
from coderig_deploy.errors import UnknownNameError
from coderig_deploy.resources import DATA_DIR

GB = 1_000_000_000
GIB = 1 << 30


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ArchitectureSpec(_Row):
    """Per-SM facts of one GPU architecture (gpu_architectures.tsv)."""

    architecture: str
    compute_capability: str
    int_lanes_per_sm: int
    fp16_tensor_flops_per_clk: float
    int8_tensor_ops_per_clk: float
    max_threads_per_sm: int
    cublas_tile: str = "-"
    mma_sync_share: float = 1.0
    tensor_nj_per_sm_cycle: float = Field(0.0, ge=0, description="board energy per SM clock of tensor work; 0: none")
    plan_note: str = Field("", description="what plan says of this architecture's speeds; blank: nothing")


class GpuSpec(_Row):
    slug: str
    name: str = Field(description="Name as nvidia-smi prints it")
    vram_gb: int
    memory_total_mib: int | None = None
    bandwidth_gbs: float
    compute_capability: str
    sm_count: int
    boost_clock_mhz: float
    pci_device_id: str
    more_pci_device_ids: str = Field("", description="The card's other PCI device ids, space-separated")
    architecture: str
    fp32_acc_share: float = Field(gt=0, le=1, description="FP32-accumulate tensor rate / FP16-accumulate rate")
    board_power_w: float = Field(gt=0, description="Board power limit (TGP / max TDP), W")
    source: str = ""
    l2_mib: float = Field(0.0, description="L2 cache (gpu_cache.tsv); 0: unknown")
    memory_latency_ns: float = Field(0.0, description="device-memory latency (gpu_memory_latency.tsv); 0: unknown")
    host_shared_mib: float = Field(0.0, ge=0, description="unified memory: MiB the host's idle OS holds of the pool "
                                   "(gpu_shared_memory.tsv); 0: the GPU's memory is its own")
    read_gbs: float = Field(0.0, ge=0, description="a streaming read's measured bandwidth, GB/s "
                            "(gpu_read_bandwidth.tsv); 0: unknown")
    board_power_min_w: float = Field(0.0, ge=0, description="the lowest power limit the card ships with where its "
                                     "makers choose it, as laptops' (gpu_power_range.tsv); 0: one limit")
    boost_clock_min_mhz: float = Field(0.0, ge=0, description="the boost clock at board_power_min_w "
                                       "(gpu_power_range.tsv); 0: unknown")
    top_tgp_w: float = Field(0.0, ge=0, description="the power limit boost_clock_mhz is given at: the top of a "
                             "laptop part's range without Dynamic Boost (gpu_power_range.tsv); 0: one limit")

    @property
    def pci_device_ids(self) -> tuple[str, ...]:
        """Every PCI device id (vendor 10de) this card comes with, lower case; the first is the primary one."""
        return tuple(i.lower() for i in (self.pci_device_id, *self.more_pci_device_ids.split()) if i)

    @property
    def vram_mib(self) -> int:
        # Marketed "24 GB" cards carry 24 GiB of GDDR; nvidia-smi's memory.total is that figure
        # unless a capture of the real card says otherwise.
        return self.memory_total_mib or self.vram_gb * 1024

    def reserved_mib(self, base_mib: float, fraction: float) -> float:
        """Memory CUDA cannot allocate: the driver's reservation (runtime.tsv, fitted on driver_reserved.tsv) and, on
        unified memory, what the host's idle OS holds. A unified-memory GPU's memory_total_mib is already CUDA's own
        total (nvidia-smi prints none), so no driver reservation comes off it."""
        if self.host_shared_mib:
            return self.host_shared_mib
        return round(base_mib + self.vram_mib * fraction)

    @property
    def power_range(self) -> bool:
        """Its power limit is its maker's choice within a range (a laptop GPU): board_power_min_w-board_power_w."""
        return 0 < self.board_power_min_w < self.board_power_w

    @property
    def power_label(self) -> str:
        """The power limit in W as people read it: `450`, or `80-175` where the maker chooses (power_range)."""
        top = f"{self.board_power_w:.0f}"
        return f"{self.board_power_min_w:.0f}-{top}" if self.power_range else top

    @property
    def geforce(self) -> bool:
        """A GeForce card (consumer segment), by the name nvidia-smi prints."""
        return "GeForce" in self.name

    def load_clock_mhz(self, geforce_clock_headroom: float = 1.0) -> float:
        """The SM clock the card runs at under load while below its power limit: GeForce cards' GPU Boost
        takes them past the rated boost clock (runtime.tsv geforce_clock_headroom); other cards are counted
        at their rated boost clock."""
        return self.boost_clock_mhz * (geforce_clock_headroom if self.geforce else 1.0)

    def device(self, arch: ArchitectureSpec | None = None, reserved_fraction: float = 0.0,
               geforce_clock_headroom: float = 1.0, reserved_base_mib: float = 0.0) -> fit.Device:
        if arch is None:
            return fit.Device(self.slug, self.vram_mib, self.bandwidth_gbs)
        return fit.Device(
            self.slug, self.vram_mib, self.bandwidth_gbs, sm_count=self.sm_count,
            clock_mhz=self.load_clock_mhz(geforce_clock_headroom),
            int_lanes_per_sm=arch.int_lanes_per_sm, tensor_flops_per_clk=arch.fp16_tensor_flops_per_clk,
            int8_ops_per_clk=arch.int8_tensor_ops_per_clk,
            max_threads_per_sm=arch.max_threads_per_sm,
            reserved_mib=self.reserved_mib(reserved_base_mib, reserved_fraction),
            l2_mib=self.l2_mib, cublas_tile=_tile(arch.cublas_tile), mma_sync_share=arch.mma_sync_share,
            fp32_acc_share=self.fp32_acc_share, memory_latency_ns=self.memory_latency_ns,
            board_power_w=self.board_power_w, tensor_nj_per_sm_cycle=arch.tensor_nj_per_sm_cycle,
            host_shared_mib=self.host_shared_mib, read_gbs=self.read_gbs,
        )


class ModelSpec(_Row):
    key: str
    ollama_name: str
    ollama_size: str
    default_quant: str
    tag_infix: str
    gguf_arch: str
    layers: int
    heads: int
    kv_heads: int
    hidden: int
    head_dim: int
    ffn: int
    vocab: int
    trained_ctx: int
    params_b: float
    active_params_b: float
    tied_embeddings: bool
    experts: int
    experts_used: int
    sliding_window: int

    def architecture(self) -> fit.Architecture:
        return fit.Architecture(
            layers=self.layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            hidden=self.hidden,
            head_dim=self.head_dim,
            ffn=self.ffn,
            vocab=self.vocab,
            params_b=self.params_b,
            active_params_b=self.active_params_b,
            tied_embeddings=self.tied_embeddings,
            experts=self.experts,
            experts_used=self.experts_used,
        )


class QuantSpec(_Row):
    quant: str
    ollama_tag: str
    bpw: float
    embd_bpw: float
    output_bpw: float
    decode_ops_per_weight: float = 0.0

    def quant_type(self) -> fit.QuantType:
        return fit.QuantType(self.quant, self.embd_bpw, self.output_bpw, self.decode_ops_per_weight)


class EngineSpec(_Row):
    engine: str
    bandwidth_efficiency: float
    per_layer_latency_us: float
    kv_l2_pass_share: float
    prefill_efficiency: float
    prefill_layer_kcycles: float
    prefill_path: Literal["mmq", "cublas"]
    mmq_efficiency: float
    mmq_sm_ops_per_clk: float = 0.0  # fit.Engine.mmq_sm_ops_per_clk
    mmq_tile: str = "-"
    kq_precision: Literal["f16", "f32"] = "f16"  # the keys of fit.SCORE_BYTES_FA_OFF
    fa_efficiency: float = 0.0
    layer_latency_kcycles: float = 0.0
    inflight_kib_per_sm: float = 0.0
    cublas_sm90: Literal["wgmma", "mma_sync"] = "wgmma"  # fit.Engine.cublas_sm90
    moe_layer_kcycles: float = 0.0  # fit.Engine.moe_layer_kcycles
    score_sm_cycles: float = 0.0  # fit.Engine.score_sm_cycles


class ModelChoice(BaseModel):
    """A model tag resolved against the catalog: which model, which quant, how big."""

    model_config = ConfigDict(frozen=True)

    tag: str = Field(description="The Ollama tag as the user wrote it")
    canonical_tag: str = Field(description="The fully spelled tag, e.g. qwen2.5-coder:32b-instruct-q4_K_M")
    model: ModelSpec
    quant: QuantSpec
    file_bytes: int
    size_source: str = Field(description="'published' or 'computed (params x bpw)'")


def _tile(text: str) -> tuple[int, int]:
    """A GEMM output tile, '256x128' -> (256, 128); '-' (no waves modelled) -> (0, 0)."""
    if text.strip() in ("", "-"):
        return (0, 0)
    rows, _, tokens = text.partition("x")
    return (int(rows), int(tokens))


def _read_tsv(name: str) -> list[dict[str, str]]:
    path = DATA_DIR / name
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(close)}?" if close else ""


class Catalog(BaseModel):
    gpus: dict[str, GpuSpec]
    architectures: dict[str, ArchitectureSpec]
    models: dict[str, ModelSpec]
    quants: dict[str, QuantSpec]
    sizes: dict[tuple[str, str], int]
    engines: dict[str, EngineSpec]
    runtime: dict[str, float]

    def gpu(self, slug: str) -> GpuSpec:
        try:
            return self.gpus[slug.lower()]
        except KeyError:
            hint = (PRE_TURING_HINT if PRE_TURING_SLUG.search(slug.lower())
                    else _suggest(slug.lower(), list(self.gpus)))
            raise UnknownNameError(
                f"unknown GPU {slug!r}.{hint} `coderig-deploy gpus` lists the known slugs."
            ) from None

    def device(self, slug: str) -> fit.Device:
        """The fit model's view of a catalog GPU: memory, bandwidth, compute and the driver's reservation."""
        spec = self.gpu(slug)
        return spec.device(self.architectures[spec.architecture], self.runtime["driver_reserved_fraction"],
                           self.runtime["geforce_clock_headroom"], self.runtime["driver_reserved_base_mib"])

    def gpu_by_name(self, name: str, memory_mib: int | None = None) -> GpuSpec | None:
        """The catalog GPU whose nvidia-smi name is `name` (older drivers omit the NVIDIA prefix). Some cards share a
        name across memory sizes (GeForce RTX 3080 10/12 GB, RTX 4060 Ti and 5060 Ti 8/16 GB): with the memory.total
        nvidia-smi reports, the one whose memory is closest; without it, the first listed."""
        wanted = name.strip().removeprefix("NVIDIA ").lower()
        named = [g for g in self.gpus.values() if g.name.removeprefix("NVIDIA ").lower() == wanted]
        if memory_mib is None or len(named) < 2:
            return named[0] if named else None
        return min(named, key=lambda g: abs(g.vram_mib - memory_mib))

    def quant(self, name: str) -> QuantSpec:
        for q in self.quants.values():
            if name.lower() in (q.quant.lower(), q.ollama_tag.lower()) or (name.lower() == "f16" and q.quant == "F16"):
                return q
        raise UnknownNameError(
            f"unknown quantization {name!r}.{_suggest(name, [q.ollama_tag for q in self.quants.values()])} "
            f"Known: {', '.join(q.ollama_tag for q in self.quants.values())}."
        )

    def engine(self, name: str = "ollama") -> fit.Engine:
        spec = self.engines[name]
        return fit.Engine(
            bandwidth_efficiency=spec.bandwidth_efficiency,
            per_layer_latency_us=spec.per_layer_latency_us,
            cuda_overhead_mib=self.runtime["cuda_overhead_mib"],
            fit_margin_mib=self.runtime["fit_margin_mib"],
            batch_size=int(self.runtime["batch_size"]),
            context_base_mib=self.runtime["cuda_context_base_mib"],
            stack_bytes_per_thread=int(self.runtime["cuda_stack_bytes_per_thread"]),
            kv_l2_pass_share=spec.kv_l2_pass_share,
            prefill_efficiency=spec.prefill_efficiency,
            prefill_layer_kcycles=spec.prefill_layer_kcycles,
            prefill_mmq=spec.prefill_path == "mmq",
            mmq_efficiency=spec.mmq_efficiency,
            mmq_sm_ops_per_clk=spec.mmq_sm_ops_per_clk,
            mmq_tile=_tile(spec.mmq_tile),
            kq_precision=spec.kq_precision,
            fa_efficiency=spec.fa_efficiency,
            pcie_gbs=self.runtime["pcie_gbs"],
            cpu_gflops=self.runtime["cpu_matmul_gflops"],
            layer_latency_kcycles=spec.layer_latency_kcycles,
            inflight_kib_per_sm=spec.inflight_kib_per_sm,
            cublas_sm90=spec.cublas_sm90,
            moe_layer_kcycles=spec.moe_layer_kcycles,
            score_sm_cycles=spec.score_sm_cycles,
        )

    def model(self, tag: str) -> ModelChoice:
        """Resolve an Ollama tag such as `qwen2.5-coder:32b` or `llama3.1:70b-instruct-q4_0`."""
        name, _, rest = tag.strip().partition(":")
        name = name.removeprefix("library/").lower()
        families = sorted({m.ollama_name for m in self.models.values()})
        if name not in families:
            raise UnknownNameError(f"unknown model {tag!r}.{_suggest(name, families)} Known families: "
                                   f"{', '.join(families)}; `coderig-deploy models` lists every size.")
        in_family = [m for m in self.models.values() if m.ollama_name == name]
        match = re.fullmatch(r"(?P<size>[0-9.]+b)(?:-(?P<infix>instruct|a3b|base))?(?:-(?P<quant>[a-z0-9_]+))?", rest or "", re.I)
        sizes = [m.ollama_size for m in in_family]
        if not match:
            raise UnknownNameError(
                f"cannot read the tag {tag!r}: expected {name}:<size>[-instruct]-<quant>, sizes {', '.join(sizes)}."
            )
        spec = next((m for m in in_family if m.ollama_size == match["size"].lower()), None)
        if spec is None:
            raise UnknownNameError(f"unknown size {match['size']!r} for {name}.{_suggest(match['size'], sizes)} "
                                   f"Known: {', '.join(sizes)}. `coderig-deploy models` lists them all.")
        quant = self.quant(match["quant"]) if match["quant"] else self.quants[spec.default_quant]
        # A base model has its instruct twin's tensors (same plan), but is another model: its tag stays its own.
        infix = f"-{match['infix'].lower()}" if match["infix"] else "" if spec.tag_infix == "-" else f"-{spec.tag_infix}"
        canonical = f"{spec.ollama_name}:{spec.ollama_size}{infix}-{quant.ollama_tag}"
        published = self.sizes.get((spec.key, quant.quant))
        if published is not None:
            return ModelChoice(tag=tag, canonical_tag=canonical, model=spec, quant=quant, file_bytes=published, size_source="published")
        computed = int(spec.params_b * 1e9 * quant.bpw / 8)
        return ModelChoice(
            tag=tag, canonical_tag=canonical, model=spec, quant=quant, file_bytes=computed, size_source="computed (params x bpw)"
        )

    def model_tags(self) -> list[str]:
        """Every canonical tag the catalog can plan: each model at each quantization."""
        tags = []
        for spec in self.models.values():
            infix = "" if spec.tag_infix == "-" else f"-{spec.tag_infix}"
            tags.extend(f"{spec.ollama_name}:{spec.ollama_size}{infix}-{q.ollama_tag}" for q in self.quants.values())
        return tags


def _sizes(rows: list[dict[str, str]]) -> dict[tuple[str, str], int]:
    unit = {"GB": GB, "GiB": GIB}
    return {(r["model"], r["quant"]): int(float(r["size"]) * unit[r["unit"]]) for r in rows}


# A slug that names a card older than Turing (Tesla P40/P100/V100, TITAN V/Xp, GTX 10xx, Quadro P/GV100): the
# catalog leaves that generation out (detect.facts.pre_turing says why), so no near-miss slug is suggested for it.
PRE_TURING_SLUG = re.compile(r"(^|[-_ ])(tesla-?)?([pv]100|p40|p4|gv100|titan-?(v|xp?)|gtx-?1\d{3}|quadro-?[pmk]\d+)"
                             r"($|[-_ ])")
PRE_TURING_REASON = ("llama.cpp runs their prompts on kernels the planner does not model, and NVIDIA's open kernel "
                     "modules need Turing or newer")
PRE_TURING_HINT = (" Cards older than Turing (Pascal, Volta and before: P40, P100, V100, GTX 10 series...) are not in "
                   f"the catalog: {PRE_TURING_REASON}.")


# Per-GPU facts kept beside gpus.tsv, a row only for the cards they are known for (0 elsewhere):
# GpuSpec field -> (data file, its column).
GPU_EXTRAS = {
    "l2_mib": ("gpu_cache.tsv", "l2_mib"),
    "memory_latency_ns": ("gpu_memory_latency.tsv", "latency_ns"),
    "host_shared_mib": ("gpu_shared_memory.tsv", "host_mib"),
    "read_gbs": ("gpu_read_bandwidth.tsv", "read_gbs"),
    "board_power_min_w": ("gpu_power_range.tsv", "min_w"),
    "boost_clock_min_mhz": ("gpu_power_range.tsv", "min_boost_clock_mhz"),
    "top_tgp_w": ("gpu_power_range.tsv", "top_tgp_w"),
}


@cache
def load_catalog(data_dir: Path | None = None) -> Catalog:
    """Load (once) every catalog data file."""
    if data_dir is not None and data_dir != DATA_DIR:
        raise ValueError("only the shipped catalog is supported")
    models = {}
    for r in _read_tsv("models.tsv"):
        r["tied_embeddings"] = r["tied_embeddings"] == "1"  # type: ignore[assignment]
        models[r["key"]] = ModelSpec.model_validate(r)
    gpus = {}
    extras = {field: {r["slug"]: r[column] for r in _read_tsv(name)} for field, (name, column) in GPU_EXTRAS.items()}
    for r in _read_tsv("gpus.tsv"):
        r["memory_total_mib"] = r["memory_total_mib"] or None  # type: ignore[assignment]
        for field, by_slug in extras.items():
            r[field] = by_slug.get(r["slug"], "0")
        gpus[r["slug"]] = GpuSpec.model_validate(r)
    return Catalog(
        gpus=gpus,
        architectures={r["architecture"]: ArchitectureSpec.model_validate(r) for r in _read_tsv("gpu_architectures.tsv")},
        models=models,
        quants={r["quant"]: QuantSpec.model_validate(r) for r in _read_tsv("quants.tsv")},
        sizes=_sizes(_read_tsv("gguf_sizes.tsv")),
        engines={r["engine"]: EngineSpec.model_validate(r) for r in _read_tsv("engines.tsv")},
        runtime={r["name"]: float(r["value"]) for r in _read_tsv("runtime.tsv")},
    )
