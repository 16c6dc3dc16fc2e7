"""`coderig-deploy plan`: the fit model's answer for a model on a set of GPUs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coderig_deploy.catalog import load_catalog
from coderig_deploy.cli import app
from coderig_deploy.cli.options import PowerLimitOpt, ProfilesDirOpt
from coderig_deploy.cli.output import emit, plain
from coderig_deploy.editor.together import memory_problem, per_gpu_mib
from coderig_deploy.errors import UserInputError
from coderig_deploy.planner import Plan, make_plan
from coderig_deploy.profiles import Profile, load_profile


# A measured row records no power limit: it would replace speeds planned at one it was not measured at.
NO_LIMIT_IN_ROWS = ("--calibration and --power-limit together: a measured row does not record the power limit it "
                    "was measured at; use the row (measured at the host's own limit) or the limit, not both")


class KvCacheOpt(str, Enum):
    f16 = "f16"
    q8_0 = "q8_0"
    q4_0 = "q4_0"


class OnOff(str, Enum):
    on = "on"
    off = "off"


@app.command()
def plan(
    model: Annotated[str | None, typer.Option(
        metavar="TAG", help="Ollama model tag, e.g. qwen2.5-coder:32b (`coderig-deploy models`)")] = None,
    gpu: Annotated[list[str] | None, typer.Option(
        metavar="SLUG", help="GPU slug (`coderig-deploy gpus`); repeat once per card")] = None,
    ctx: Annotated[int | None, typer.Option(
        metavar="TOKENS", max=1_048_576, help="Context length (num_ctx) in tokens")] = None,
    kv_cache: Annotated[KvCacheOpt | None, typer.Option(help="KV cache type")] = None,
    flash_attention: Annotated[OnOff | None, typer.Option(help="Flash attention")] = None,
    parallel: Annotated[int | None, typer.Option(metavar="N", max=64, help="OLLAMA_NUM_PARALLEL")] = None,
    profile: Annotated[str | None, typer.Option(
        metavar="NAME|FILE", help="Take model, context and GPUs from a profile")] = None,
    profiles_dir: ProfilesDirOpt = None,
    spread: Annotated[bool, typer.Option(help="Split over all GPUs even when one is enough")] = False,
    ram_bandwidth: Annotated[float | None, typer.Option(
        metavar="GB/S", min=1, max=10_000, help="System RAM bandwidth, GB/s")] = None,
    depth: Annotated[int | None, typer.Option(
        metavar="TOKENS", min=0, max=1_048_576, help="Tokens in context for the speed estimate")] = None,
    calibration: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Measured rows (`coderig-deploy probe`): a matching row replaces the prediction")] = None,
    prompt_tokens: Annotated[int, typer.Option(
        metavar="TOKENS", min=0, max=1_048_576, help="Prompt length for the time-to-first-token estimate")] = 4096,
    power_limit: PowerLimitOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Does a model fit on these GPUs, how is it split, and how fast will it generate?"""
    if calibration and power_limit is not None:
        raise UserInputError(NO_LIMIT_IN_ROWS)
    args = _resolve(model, gpu, ctx, kv_cache, flash_attention, parallel, profile, profiles_dir)

    def replan(prompt: int, at_depth: int | None) -> Plan:
        return make_plan(**args, spread=spread, ram_bandwidth_gbs=ram_bandwidth, depth=at_depth,
                         prompt_tokens=prompt, power_limit_w=power_limit)

    result = replan(prompt_tokens, depth)
    if profile and model is None:
        result = _with_other_models(result, load_profile(profile, profiles_dir), args)
    if calibration:
        from coderig_deploy.probe import measured

        key = load_catalog().model(result.model).model.key
        result = measured.apply(result, measured.read_rows(calibration), key, replan)
    emit(result.model_dump(mode="json"), json_out, lambda c: render_plan(c, result))
    return 0 if result.fits else 1


def _with_other_models(result: Plan, profile: Profile, args: dict) -> Plan:
    """`result` judged with the profile's other models (`models:`, e.g. a FIM model beside the chat model)
    loaded beside it, on the GPUs and settings planned: a profile is served whole or not at all."""
    if not profile.models:
        return result
    others = [make_plan(r.tag, args["gpu_slugs"], r.num_ctx, kv_cache=args["kv_cache"],
                        flash_attention=args["flash_attention"], parallel=args["parallel"]) for r in profile.models]
    names = ", ".join(r.variant_name for r in profile.models)
    together = " + ".join(str(used) for used, _usable, _margin in per_gpu_mib([result, *others]))
    problem = memory_problem([result, *others])
    if problem:
        return result.model_copy(update={"fits": False, "notes": [*result.notes, f"with the profile's other "
                                         f"models ({names}) loaded beside it, {problem}"]})
    return result.model_copy(update={"notes": [*result.notes, f"with the profile's other models ({names}) loaded "
                                               f"beside it: {together} MiB per GPU, which fits"]})


def _resolve(
    model: str | None, gpu: list[str] | None, ctx: int | None, kv_cache: KvCacheOpt | None,
    flash_attention: OnOff | None, parallel: int | None, profile: str | None, profiles_dir: Path | None,
) -> dict:
    """Merge a profile's values with the explicit options (options win)."""
    base: dict = {"kv_cache": "f16", "flash_attention": True, "parallel": 1}
    if profile:
        p = load_profile(profile, profiles_dir)
        base = {
            "model_tag": p.model.tag,
            "gpu_slugs": [p.hardware.gpu] * p.hardware.count,
            "ctx": p.model.num_ctx,
            "kv_cache": p.ollama.kv_cache_type,
            "flash_attention": p.ollama.flash_attention,
            "parallel": p.ollama.num_parallel,
        }
    overrides = {
        "model_tag": model,
        "gpu_slugs": gpu or None,
        "ctx": ctx,
        "kv_cache": kv_cache.value if kv_cache else None,
        "flash_attention": None if flash_attention is None else flash_attention is OnOff.on,
        "parallel": parallel,
    }
    merged = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    # A misspelt model or GPU is the first thing to say, before asking for what is missing.
    catalog = load_catalog()
    if "model_tag" in merged:
        catalog.model(merged["model_tag"])
    for slug in merged.get("gpu_slugs", []):
        catalog.gpu(slug)
    missing = [f"--{k.split('_')[0]}" for k in ("model_tag", "gpu_slugs", "ctx") if k not in merged]
    if missing:
        raise UserInputError(f"plan needs {', '.join(missing)} (or --profile NAME)")
    return merged


def render_plan(console: Console, p: Plan) -> None:
    title = f"{p.canonical_tag} on {' + '.join(p.gpus) or 'CPU only'}, ctx {p.ctx}"
    table = Table(title=title, title_justify="left")
    for col in ("GPU", "layers", "weights", "KV cache", "compute", "overhead", "used / total MiB"):
        table.add_column(col, justify="right" if col != "GPU" else "left", overflow="fold")
    for g in p.per_gpu:
        table.add_row(g.gpu, str(g.layers), str(g.weights_mib), str(g.kv_cache_mib), str(g.compute_mib),
                      str(g.overhead_mib), f"{g.used_mib} / {g.total_mib}")
    console.print(table)
    cache = f"{p.kv_cache} KV cache, flash attention {'on' if p.flash_attention else 'off'}, parallel {p.parallel}"
    console.print(f"model file {p.file_size_mib} MiB ({p.size_source}); {cache}")
    if p.cpu_weights_mib:
        console.print(f"in system RAM: {p.cpu_weights_mib} MiB of weights, {p.cpu_kv_cache_mib} MiB of KV cache")
    verdict = "[green]fits[/]" if p.fits else "[red]does not fit[/]"
    console.print(
        f"{verdict}: {p.vram_mib} MiB on GPU (margin {p.margin_mib} MiB per GPU), "
        f"{p.gpu_fraction:.0%} of the model on GPU"
    )
    console.print(f"usable {p.usable_mib} MiB (total less driver-reserved), headroom {p.headroom_mib} MiB")
    console.print(
        f"at depth {p.decode_depth}: ~{p.decode_tok_s:.1f} tok/s decode, ~{p.prefill_tok_s:.0f} tok/s prefill; "
        f"time to first token ~{p.time_to_first_token_s:.2f} s for a {p.prompt_tokens}-token prompt"
    )
    for note in p.notes:  # a note can quote a calibration file's text
        console.print(plain(f"note: {note}"))
