"""`recommend`: which model, quantization, context and KV cache to run on a set of GPUs.

Every candidate is planned with `planner.make_plan` (the same function `plan` uses),
kept when it fits entirely on the GPUs and the system RAM holds what stays there,
and ranked by one stated order (RANKING). With measured rows (`probe`), a row for a
candidate's exact setup replaces its predicted figures, as `plan --calibration` does.
Pure: no printing, no files.
"""

from __future__ import annotations

import csv
from typing import Literal

from pydantic import BaseModel, Field

from coderig_deploy.catalog import load_catalog
from coderig_deploy.errors import UserInputError
from coderig_deploy.planner import Plan, architecture_notes, check_power_limit, make_plan, power_limit_notes
from coderig_deploy.probe import measured
from coderig_deploy.probe.measured import MeasuredRow
from coderig_deploy.resources import DATA_DIR

Purpose = Literal["chat", "autocomplete", "agent"]
CONTEXTS = (131072, 65536, 32768, 16384, 8192, 4096)
QUANTS = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M")  # highest first; Q4_0 and F16 are not offered
KV_CACHES = ("f16", "q8_0")  # f16 first: a quantized cache only where it buys a longer context
TTFT_PROMPT_TOKENS = 4096
OS_RAM_MIB = 4096  # system RAM kept for the OS and Ollama itself
RANKING = ("bigger size class (<=2, 4, 9, 17, 35, 80B; autocomplete: FIM model, smaller), suited family, "
           "quant, ctx, f16 KV")


class Choice(BaseModel):
    rank: int
    tag: str = Field(description="Ollama tag to pull")
    params_b: float
    quant: str
    ctx: int
    kv_cache: str
    decode_tok_s: float
    prefill_tok_s: float
    ttft_4k_s: float = Field(description="Time to first token for a 4096-token prompt, seconds")
    headroom_mib: int = Field(description="Smallest per-GPU memory left below usable minus the margin")
    vram_mib: int
    measured: bool = Field(default=False, description="Figures from a measured row (probe), not the model")


class Recommendation(BaseModel):
    gpus: list[str]
    purpose: Purpose
    ram_gb: float | None
    power_limit_w: float | None = Field(None, description="Power limit per GPU the speeds are for, W (None: default)")
    ranking: str = RANKING
    choices: list[Choice]
    not_fitting: list[str] = Field(description="Why nothing fits, or why the top choice stops at its context")
    notes: list[str] = Field(default_factory=list, description="What the figures assume about the GPUs")


def _purposes() -> dict[str, dict[str, str]]:
    lines = [ln for ln in (DATA_DIR / "purposes.tsv").read_text().splitlines() if ln and not ln.startswith("#")]
    return {row["purpose"]: row for row in csv.DictReader(lines, delimiter="\t")}


SIZE_CLASS_TOPS_B = (2, 4, 9, 17, 35, 80, 10_000)  # the largest model of each class, billions (RANKING)


def _size_class(params_b: float) -> int:
    """Models within a class (e.g. 30-34B) compete on suitability, not on a billion more parameters."""
    return next(i for i, top in enumerate(SIZE_CLASS_TOPS_B) if params_b <= top)


def _best_setting(tag: str, gpus: list[str], min_ctx: int, trained_ctx: int, ram_mib: float | None,
                  rows: list[MeasuredRow], model_key: str, power_limit_w: float | None) -> Plan | None:
    """The longest context (f16 cache before q8_0) at which `tag` fits, or None; a measured
    row for the setup decides over the prediction (a measured partial offload does not fit)."""
    for ctx in (c for c in CONTEXTS if min_ctx <= c <= trained_ctx):
        for kv in KV_CACHES:
            def replan(prompt: int, depth: int | None, ctx: int = ctx, kv: str = kv) -> Plan:
                return make_plan(tag, gpus, ctx, kv, True, prompt_tokens=prompt, depth=depth, low_power_note=False,
                                 power_limit_w=power_limit_w)

            plan = replan(TTFT_PROMPT_TOKENS, None)
            if rows and measured.matching(rows, plan, model_key):
                plan = measured.apply(plan, rows, model_key, replan)
            in_ram = plan.cpu_weights_mib + plan.cpu_kv_cache_mib + OS_RAM_MIB
            if plan.fits and (ram_mib is None or in_ram <= ram_mib):
                return plan
    return None


def recommend(gpus: list[str], purpose: Purpose = "chat", ram_gb: float | None = None, limit: int = 10,
              rows: list[MeasuredRow] | None = None, power_limit_w: float | None = None) -> Recommendation:
    if not gpus:
        raise UserInputError("recommend needs at least one --gpu SLUG (`coderig-deploy gpus` lists them)")
    catalog = load_catalog()
    specs = [catalog.gpu(slug) for slug in gpus]
    if power_limit_w is not None:
        check_power_limit(specs, power_limit_w)
    rules = _purposes()[purpose]
    max_params = float(rules["max_params_b"]) or float("inf")
    ram_mib = ram_gb * 1024 if ram_gb else None
    found = []
    for spec in catalog.models.values():
        family_rank = int(rules.get(spec.ollama_name, "0") or 0)
        if not family_rank or spec.params_b > max_params:
            continue
        for q_index, quant in enumerate(QUANTS):
            tag = f"{spec.ollama_name}:{spec.ollama_size}" + (
                "" if spec.tag_infix == "-" else f"-{spec.tag_infix}") + f"-{catalog.quants[quant].ollama_tag}"
            plan = _best_setting(tag, gpus, int(rules["min_ctx"]), spec.trained_ctx, ram_mib, rows or [], spec.key,
                                 power_limit_w)
            if plan is None:
                continue
            size = _size_class(spec.params_b)
            size_key = size if purpose == "autocomplete" else -size
            key = (family_rank if purpose == "autocomplete" else 0, size_key, family_rank, q_index, -plan.ctx,
                   KV_CACHES.index(plan.kv_cache))
            found.append((key, spec.params_b, plan))
    found.sort(key=lambda item: item[0])
    choices = [_choice(i + 1, params, plan) for i, (_, params, plan) in enumerate(found[:limit])]
    if not choices:
        reasons = [_nothing_fits(gpus, purpose, rules, ram_gb)]
    else:
        top = found[0][2]
        reasons = _longer_context(top, gpus, catalog.model(top.canonical_tag).model.trained_ctx)
    return Recommendation(gpus=gpus, purpose=purpose, ram_gb=ram_gb, power_limit_w=power_limit_w, choices=choices,
                          not_fitting=reasons, notes=_gpu_notes(gpus, power_limit_w))


def _gpu_notes(gpus: list[str], power_limit_w: float | None) -> list[str]:
    """What the speeds assume: the power limit given, or laptop GPUs at the top of the power range their makers
    choose from; an architecture the rows show the model overestimates (planner.architecture_notes)."""
    catalog = load_catalog()
    cards = list(dict.fromkeys(catalog.gpu(s) for s in gpus))
    if power_limit_w is not None:
        return power_limit_notes(cards, power_limit_w) + architecture_notes(cards)
    return [f"{g.slug}: speeds at {g.board_power_w:.0f} W, the top of the {g.power_label} W its laptop's maker "
            f"chooses from; prompts run slower below it (`coderig-deploy plan` gives the speed at "
            f"{g.board_power_min_w:.0f} W)" for g in cards if g.power_range] + architecture_notes(cards)


def _longer_context(top: Plan, gpus: list[str], trained_ctx: int) -> list[str]:
    """Why the top choice stops where it does: the next longer context with a q8_0 cache, and its shortfall."""
    longer = [c for c in CONTEXTS if top.ctx < c <= trained_ctx]
    if not longer:
        return []
    nxt = make_plan(top.canonical_tag, gpus, longer[-1], "q8_0", True)
    if nxt.fits:  # only RAM stopped it
        return [f"ctx {longer[-1]} would fit the GPUs but not the system RAM given"]
    return [f"the next longer context, {longer[-1]} with a q8_0 cache, does not fit: {nxt.shortfall_mib} MiB short "
            f"on a GPU (usable memory less the {nxt.margin_mib} MiB margin)"]


def _choice(rank: int, params_b: float, p: Plan) -> Choice:
    return Choice(rank=rank, tag=p.canonical_tag, params_b=params_b, quant=p.quant, ctx=p.ctx, kv_cache=p.kv_cache,
                  decode_tok_s=p.decode_tok_s, prefill_tok_s=p.prefill_tok_s, ttft_4k_s=p.time_to_first_token_s,
                  headroom_mib=p.headroom_mib, vram_mib=p.vram_mib,
                  measured=any(n.startswith("measured ") for n in p.notes))


def _nothing_fits(gpus: list[str], purpose: str, rules: dict[str, str], ram_gb: float | None) -> str:
    usable = make_plan("qwen2.5-coder:1.5b", gpus, 4096).usable_mib
    if ram_gb and ram_gb * 1024 <= OS_RAM_MIB:  # the RAM, not the GPU: say so first
        return (f"{ram_gb:g} GB of system RAM is no more than the {OS_RAM_MIB} MiB the OS and Ollama keep for "
                f"themselves: no model can be loaded through it, whatever {' + '.join(gpus)} holds")
    ram = f" and {ram_gb:g} GB of RAM (the OS keeps {OS_RAM_MIB} MiB)" if ram_gb else ""
    return (f"no catalog model fits {' + '.join(gpus)} ({usable} MiB usable){ram} for {purpose} with at least a "
            f"{rules['min_ctx']}-token context and every layer on the GPU")
