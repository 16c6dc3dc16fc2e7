"""A Plan: the fit model's answer for one model on one set of GPUs, as data.

`make_plan` resolves names against the catalog, runs `fit.fit` and returns a
pydantic model whose JSON is the `plan --json` contract (keep it stable: checks
outside the test suite read `fits`, `vram_mib`, `per_gpu`, `weights_mib`,
`kv_cache_mib`, `compute_mib`, `overhead_mib`, `gpu_fraction`, `decode_tok_s`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from pydantic import BaseModel, Field

from coderig_deploy import fit
from coderig_deploy.catalog import GpuSpec, load_catalog
from coderig_deploy.errors import UserInputError

KvCache = Literal["f16", "q8_0", "q4_0"]


class GpuUse(BaseModel):
    gpu: str
    used_mib: int = Field(description="Memory in use on this GPU once loaded, as nvidia-smi shows it")
    total_mib: int
    usable_mib: int = Field(description="What CUDA can allocate on this GPU: total less driver-reserved")
    layers: int
    weights_mib: int
    kv_cache_mib: int
    compute_mib: int
    overhead_mib: int


class Plan(BaseModel):
    model: str = Field(description="The tag as asked")
    canonical_tag: str
    quant: str
    file_size_mib: int
    size_source: str
    gpus: list[str]
    ctx: int
    parallel: int
    kv_cache: KvCache
    flash_attention: bool
    fits: bool
    vram_mib: int = Field(description="GPU memory in use once loaded, summed over GPUs")
    per_gpu: list[GpuUse]
    weights_mib: int = Field(description="Weights on the GPUs")
    kv_cache_mib: int = Field(description="KV cache on the GPUs")
    compute_mib: int
    overhead_mib: int
    cpu_weights_mib: int = Field(description="Weights in system RAM (token embedding; offloaded layers)")
    cpu_kv_cache_mib: int
    gpu_fraction: float = Field(description="Share of the offloadable weights on GPU, 0..1")
    layers_on_gpu: int
    layers_total: int
    decode_tok_s: float
    decode_depth: int = Field(description="Tokens in context at which decode speed is predicted")
    prefill_tok_s: float = Field(description="Prompt processing speed at decode_depth, tokens/s")
    prompt_tokens: int = Field(description="Prompt length time_to_first_token_s is predicted for")
    time_to_first_token_s: float = Field(description="Prefill of prompt_tokens plus one decode step, model loaded")
    usable_mib: int = Field(description="Memory CUDA can allocate on the GPUs: total minus driver-reserved, summed")
    headroom_mib: int = Field(description="Smallest per-GPU gap between usable memory less the margin and use")
    shortfall_mib: int = Field(description="With every layer on the GPUs: the most any GPU would be over "
                                           "usable less the margin (0 when the plan fits)")
    margin_mib: int = Field(description="Memory each GPU must keep free for `fits`")
    ps_size_mib: int = Field(description="Ollama /api/ps `size`: everything the loaded model occupies")
    ps_size_vram_mib: int = Field(description="Ollama /api/ps `size_vram`: the part of it on GPUs")
    power_limit_w: float | None = Field(None, description="Power limit per GPU the speeds are for, W (None: each "
                                                          "card's default; a laptop's at the top of its range)")
    notes: list[str]


# llama.cpp's CUDA backend handles at most this many devices in one process (ggml/include/ggml-cuda.h,
# GGML_CUDA_MAX_DEVICES); a profile's hardware.count has the same bound.
MAX_GPUS = 16


def make_plan(
    model_tag: str,
    gpu_slugs: list[str],
    ctx: int,
    kv_cache: str = "f16",
    flash_attention: bool = True,
    parallel: int = 1,
    *,
    spread: bool = False,
    ram_bandwidth_gbs: float | None = None,
    depth: int | None = None,
    engine: str = "ollama",
    prompt_tokens: int = 4096,
    file_bytes: int | None = None,
    logits_every_token: bool = True,
    prompt_start: int = 0,
    ubatch: int | None = None,
    low_power_note: bool = True,
    power_limit_w: float | None = None,
) -> Plan:
    """Plan `model_tag` with a `ctx`-token context on the GPUs named by `gpu_slugs`.

    The one entry point of the fit model for `plan`, `recommend` and the calibration
    check; `file_bytes` overrides the catalog's size (a measured or generated file);
    `logits_every_token=False` predicts tokens whose logits nobody reads (a prompt run one token per ubatch).
    `prompt_start` tokens already in the cache precede the prompt (llama-bench's ppN@dSTART).
    `ubatch` overrides the runtime's microbatch size (llama-bench -ub), which sets prefill's tile shapes.
    `low_power_note=False` leaves out the note on a laptop GPU's lowest power limit, which takes a second fit
    (callers that plan many settings and show no notes: recommend).
    `power_limit_w` is the power limit a laptop's maker set for its GPU (`at_power_limit`; laptop GPUs only).
    """
    if ctx < 256:
        raise UserInputError(f"--ctx {ctx} is too small: use at least 256 tokens")
    if parallel < 1:
        raise UserInputError(f"--parallel {parallel} must be at least 1")
    if prompt_tokens < 0:
        raise UserInputError(f"--prompt-tokens {prompt_tokens} must not be negative")
    if kv_cache not in fit.KV_BYTES_PER_ELEMENT:
        raise UserInputError(f"unknown KV cache type {kv_cache!r}: use f16, q8_0 or q4_0")
    if ubatch is not None and ubatch < 1:
        raise UserInputError(f"ubatch {ubatch} must be at least 1")
    if len(gpu_slugs) > MAX_GPUS:
        raise UserInputError(f"{len(gpu_slugs)} GPUs: llama.cpp's CUDA backend, which Ollama runs models on, "
                             f"uses at most {MAX_GPUS} per process (GGML_CUDA_MAX_DEVICES)")
    catalog = load_catalog()
    engine_constants = catalog.engine(engine)
    if ubatch is not None:
        engine_constants = dataclasses.replace(engine_constants, batch_size=ubatch)
    choice = catalog.model(model_tag)
    gpus = [catalog.gpu(slug) for slug in gpu_slugs]
    if power_limit_w is not None:
        check_power_limit(gpus, power_limit_w)
    runtime = catalog.runtime
    request = fit.FitRequest(
        arch=choice.model.architecture(),
        quant=choice.quant.quant_type(),
        file_bytes=file_bytes or choice.file_bytes,
        devices=tuple(catalog.device(g.slug) if power_limit_w is None
                      else at_power_limit(catalog.device(g.slug), g, power_limit_w) for g in gpus),
        engine=engine_constants,
        ctx=ctx,
        kv_cache=kv_cache,
        flash_attention=flash_attention,
        parallel=parallel,
        spread=spread,
        ram_bandwidth_gbs=ram_bandwidth_gbs or runtime["system_ram_bandwidth_gbs"],
        depth=min(int(runtime["decode_depth"]) if depth is None else depth, ctx),
        logits_every_token=logits_every_token,
    )
    result = fit.fit(request)
    notes = list(result.notes)
    if ctx > choice.model.trained_ctx:
        notes.append(f"ctx {ctx} exceeds the model's trained context {choice.model.trained_ctx}")
    if not gpus:
        notes.append("no GPU: the whole model runs from system RAM (prefill speed is a rough CPU estimate)")
    if prompt_tokens > ctx:
        notes.append(f"a {prompt_tokens}-token prompt does not fit a {ctx}-token context; Ollama truncates it")
    if depth is not None and depth > ctx:
        notes.append(f"depth {depth} is past the {ctx}-token context, which holds no more: decode is given at "
                     f"depth {ctx}")
    ttft = fit.time_to_first_token(request, result, min(prompt_tokens, ctx - prompt_start), prompt_start)
    if power_limit_w is not None:
        notes += power_limit_notes(gpus, power_limit_w)
    elif low_power_note:
        notes += _power_range_notes(request, gpus, min(prompt_tokens, ctx - prompt_start), prompt_start)
    notes += architecture_notes(gpus)
    shortfall = 0.0
    if not result.fits and request.devices:
        full = fit.place(request, request.devices, request.arch.layers + 1)
        shortfall = max(u.used_mib - (u.usable_mib - result.margin_mib) for u in full)
    size_source = "given" if file_bytes else choice.size_source
    plan = _to_plan(model_tag, choice.canonical_tag, choice.quant.quant, request.file_bytes, size_source,
                    request, result, notes, min(prompt_tokens, ctx), ttft, shortfall)
    return plan.model_copy(update={"power_limit_w": power_limit_w})


def _power_range_notes(request: fit.FitRequest, gpus: list[GpuSpec], prompt_tokens: int, prompt_start: int) -> list[str]:
    """For cards whose makers set the power limit (laptops): the speeds at the lowest limit they ship with. The plan
    is at the highest; the same card in a thin laptop may be allowed half of it, and runs at the boost clock NVIDIA
    gives for that limit."""
    ranged = {g.slug: g for g in gpus if g.power_range}
    if not ranged:
        return []
    low = dataclasses.replace(request, devices=tuple(
        at_power_limit(d, ranged[d.name], ranged[d.name].board_power_min_w) if d.name in ranged else d
        for d in request.devices))
    result = fit.fit(low)
    ttft = fit.time_to_first_token(low, result, prompt_tokens, prompt_start)
    names = ", ".join(f"{g.slug} {g.power_label} W" for g in ranged.values())
    return [f"power limit set by the laptop's maker ({names}): speeds here are at the highest limit; at the "
            f"lowest, about {result.prefill_tok_s:.0f} tok/s prefill, {ttft:.1f} s to the first token and "
            f"{result.decode_tok_s:.0f} tok/s decode. `nvidia-smi -q -d POWER` shows a host's limit"]


def architecture_notes(gpus: list[GpuSpec]) -> list[str]:
    """What the rows say of the speed model on these GPUs' architectures (gpu_architectures.tsv plan_note)."""
    architectures = load_catalog().architectures
    return [f"{arch} GPU: {architectures[arch].plan_note}" for arch in dict.fromkeys(g.architecture for g in gpus)
            if architectures[arch].plan_note]


def at_power_limit(dev: fit.Device, gpu: GpuSpec, watts: float) -> fit.Device:
    """`dev`, a laptop GPU, at the power limit `watts` its laptop's maker set. The limit caps the tensor work the
    board sustains (fit.power_limited_rate, on architectures with a fitted energy per clock), and the part runs at a
    lower boost clock: gpu_power_range.tsv gives the clock at the bottom of the range and gpus.tsv the top clock at
    the top of the range without Dynamic Boost (top_tgp_w); between them the clock is taken as linear in the limit
    (a clock rises more slowly than its power near the top, so this is a lower bound), above it the top clock."""
    clock = dev.clock_mhz
    if gpu.power_range and gpu.boost_clock_min_mhz:
        top = gpu.top_tgp_w or gpu.board_power_w
        share = min(max((watts - gpu.board_power_min_w) / (top - gpu.board_power_min_w), 0.0), 1.0)
        boost = gpu.boost_clock_min_mhz + share * (gpu.boost_clock_mhz - gpu.boost_clock_min_mhz)
        clock = dev.clock_mhz * boost / gpu.boost_clock_mhz
    return dataclasses.replace(dev, board_power_w=watts, clock_mhz=clock)


def check_power_limit(gpus: list[GpuSpec], watts: float) -> None:
    """A power limit is planned only on a laptop GPU (one model: a laptop has one), inside the range NVIDIA lists
    for it, where the clocks at both ends are known. A desktop card's speed under a lowered limit depends on the
    card's own voltage and memory power, which no catalog figure gives (the public power-limit sweeps of an RTX 3090
    and an RTX PRO 6000 in benchmarks/calibration.tsv's notes do not share one curve)."""
    if watts <= 0:
        raise UserInputError(f"--power-limit {watts:g} must be a positive number of watts")
    models = list(dict.fromkeys(gpus))
    fixed = [g.slug for g in models if not g.power_range]
    if fixed:
        raise UserInputError(
            f"--power-limit is for laptop GPUs, whose makers choose the limit; {', '.join(fixed)} "
            f"{'runs' if len(fixed) == 1 else 'run'} at {'its' if len(fixed) == 1 else 'their'} own default limit "
            "in plans. What a lowered desktop limit costs differs from card to card: measure it (`coderig-deploy "
            "probe` on the host after `nvidia-smi -pl`)")
    if len(models) > 1:
        raise UserInputError("--power-limit is one laptop's limit: plan one laptop GPU model at a time")
    gpu = models[0] if models else None
    if gpu and not gpu.board_power_min_w <= watts <= gpu.board_power_w:
        raise UserInputError(f"--power-limit {watts:g} is outside the {gpu.power_label} W NVIDIA lists for "
                             f"{gpu.slug} (Dynamic Boost included); a laptop's limit is inside it")


def power_limit_notes(gpus: list[GpuSpec], watts: float) -> list[str]:
    """What a plan at the laptop power limit `watts` models (check_power_limit has refused everything else)."""
    architectures = load_catalog().architectures
    clock = "lowers the boost clock and " if all(g.boost_clock_min_mhz for g in gpus) else ""
    notes = [f"power limit {watts:g} W, as the laptop's maker set it: it {clock}caps the tensor work of a prompt; "
             "decode, bound by memory bandwidth, changes little"]
    for gpu in dict.fromkeys(gpus):
        if not gpu.boost_clock_min_mhz:
            notes.append(f"{gpu.slug}: its clock at the bottom of its range was not found, so the clock is left "
                         "at the top one and only the power cap is modelled")
        if not architectures[gpu.architecture].tensor_nj_per_sm_cycle:
            notes.append(f"{gpu.slug} ({gpu.architecture}): no measurement gives this architecture's energy per "
                         "clock, so only the lower clock is modelled")
    return notes


def _to_plan(
    tag: str, canonical: str, quant: str, file_bytes: int, size_source: str,
    request: fit.FitRequest, result: fit.FitResult, notes: list[str], prompt_tokens: int, ttft: float,
    shortfall: float,
) -> Plan:
    per_gpu = [
        GpuUse(
            gpu=u.name,
            used_mib=round(u.used_mib),
            total_mib=round(u.total_mib),
            usable_mib=round(u.usable_mib),
            layers=u.layers,
            weights_mib=round(u.weights_mib),
            kv_cache_mib=round(u.kv_cache_mib),
            compute_mib=round(u.compute_mib),
            overhead_mib=round(u.overhead_mib),
        )
        for u in result.devices
    ]
    vram = sum(u.used_mib for u in result.devices)
    return Plan(
        model=tag,
        canonical_tag=canonical,
        quant=quant,
        file_size_mib=round(file_bytes / fit.MIB),
        size_source=size_source,
        gpus=[d.name for d in request.devices],
        ctx=request.ctx,
        parallel=request.parallel,
        kv_cache=request.kv_cache,  # type: ignore[arg-type]
        flash_attention=request.flash_attention,
        fits=result.fits,
        vram_mib=round(vram),
        per_gpu=per_gpu,
        weights_mib=round(sum(u.weights_mib for u in result.devices)),
        kv_cache_mib=round(sum(u.kv_cache_mib for u in result.devices)),
        compute_mib=round(sum(u.compute_mib for u in result.devices)),
        overhead_mib=round(sum(u.overhead_mib for u in result.devices)),
        cpu_weights_mib=round(result.cpu_weights_mib),
        cpu_kv_cache_mib=round(result.cpu_kv_cache_mib),
        gpu_fraction=round(result.gpu_fraction, 4),
        layers_on_gpu=result.layers_on_gpu,
        layers_total=result.layers_total,
        decode_tok_s=round(result.decode_tok_s, 2),
        decode_depth=request.depth,
        prefill_tok_s=round(result.prefill_tok_s, 1),
        prompt_tokens=prompt_tokens,
        time_to_first_token_s=round(ttft, 6),
        usable_mib=round(sum(d.usable_mib for d in request.devices)),
        headroom_mib=round(min((u.usable_mib - result.margin_mib - u.used_mib for u in result.devices if u.layers),
                               default=0.0)),
        shortfall_mib=round(max(shortfall, 0.0)),
        margin_mib=round(result.margin_mib),
        ps_size_mib=round(result.ps_size_bytes / fit.MIB),
        ps_size_vram_mib=round(result.ps_size_vram_bytes / fit.MIB),
        notes=notes,
    )
