"""`coderig-deploy profiles list|show|validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from coderig_deploy.cli import app
from coderig_deploy.cli.options import ProfilesDirOpt
from coderig_deploy.cli.output import emit, plain
from coderig_deploy.cli.plan import render_plan
from coderig_deploy.errors import ProfileError
from coderig_deploy.editor.together import together_line, together_mib
from coderig_deploy.profiles import (
    Profile,
    list_profiles,
    load_profile,
    load_profile_file,
)

profiles_app = typer.Typer(help="List, show and validate hardware profiles.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def summary(p: Profile) -> dict:
    plan = p.plan
    return {
        "name": p.name,
        "gpus": f"{p.hardware.count}x {p.hardware.gpu}",
        "model": p.model.tag,
        "quant": plan.quant,
        "num_ctx": p.model.num_ctx,
        "kv_cache": p.ollama.kv_cache_type,
        # every model the profile serves, loaded side by side (`models:` beside `model`)
        "models": len(p.all_models),
        "vram_per_gpu_mib": [g["used_mib"] for g in together_mib(p)],
        "fits": plan.fits,
        "predicted_tok_s": plan.decode_tok_s,
        "expected_tok_s": p.expect.decode_tok_s,
    }


@profiles_app.command("list")
def list_cmd(profiles_dir: ProfilesDirOpt = None, json_out: JsonOpt = False) -> None:
    """Every profile: GPUs, model and quant, context and KV cache, predicted VRAM per GPU, tok/s."""
    rows, broken = [], []
    for name in list_profiles(profiles_dir):
        try:
            rows.append(summary(load_profile(name, profiles_dir)))
        except ProfileError as exc:  # one bad file of a team's directory hides none of the others
            broken.append(str(exc))

    def render(console: Console) -> None:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("profile", "GPUs", "model", "ctx, KV", "MiB/GPU", "fits", "tok/s plan/exp"):
            table.add_column(col, no_wrap=True, justify="right" if col == "MiB/GPU" else "left")
        lines = []
        for r in rows:
            # the quantization where the tag does not spell it (qwen2.5-coder:14b is its default's)
            quant = "" if r["model"].lower().endswith(r["quant"].lower()) else f" {r['quant']}"
            model = r["model"] + quant + (f" (+{r['models'] - 1})" if r["models"] > 1 else "")
            ctx = f"{r['num_ctx'] // 1024}K" if r["num_ctx"] % 1024 == 0 else str(r["num_ctx"])
            cells = (r["name"], r["gpus"], model, f"{ctx} {r['kv_cache']}",
                     " + ".join(map(str, r["vram_per_gpu_mib"])), "yes" if r["fits"] else "no",
                     f"{r['predicted_tok_s']:.0f} / {r['expected_tok_s']:.0f}")
            table.add_row(*cells[:5], cells[5] if r["fits"] else "[red]no[/]", cells[6])
            lines.append(cells)
        if console.measure(table, options=console.options.update_width(10_000)).maximum <= console.width:
            console.print(table)
            return
        # A narrow terminal: two lines a profile, every name whole (a cut or folded name cannot be copied).
        for name, gpus, model, ctx, mib, fits, tok_s in lines:
            verdict = ("fits", "") if fits == "yes" else ("does not fit", "red")
            console.print(plain((name, "bold"), f"  {gpus}, {ctx}, {mib} MiB/GPU, ", verdict))
            console.print(plain(f"    {model}, {tok_s} tok/s planned / expected"))

    emit(rows, json_out, render)
    if broken:
        raise ProfileError("\n".join(broken))


@profiles_app.command("show")
def show_cmd(name: Annotated[str, typer.Argument(metavar="PROFILE", help="Profile name or file")],
             profiles_dir: ProfilesDirOpt = None, json_out: JsonOpt = False) -> None:
    """A profile, the Ollama environment it sets, and its plan."""
    p = load_profile(name, profiles_dir)
    data = {"profile": p.model_dump(mode="json"), "ollama_env": p.ollama_env(),
            "together": together_mib(p),
            "variant": p.model.variant_name, "plan": p.plan.model_dump(mode="json")}

    def render(console: Console) -> None:
        console.print(plain((p.name, "bold"), ": ", p.description))
        console.print(f"hardware: {p.hardware.count}x {p.hardware.gpu}; driver {p.driver.branch} "
                      f"({p.driver.source}); Ollama {p.ollama.version}")
        for ref in p.all_models:
            console.print(f"model: {ref.tag} as {ref.variant_name} (num_ctx {ref.num_ctx}, {ref.role})")
        if p.models:
            console.print(together_line(p))
        console.print("environment: " + " ".join(f"{k}={v}" for k, v in p.ollama_env().items()))
        console.print(f"expect: >= {p.expect.decode_tok_s - p.expect.tolerance_tok_s:.0f} tok/s "
                      f"({p.expect.decode_tok_s:.0f} - {p.expect.tolerance_tok_s:.0f}), {p.expect.gpu_percent}% GPU")
        render_plan(console, p.plan)

    emit(data, json_out, render)


@profiles_app.command("validate")
def validate_cmd(files: Annotated[list[Path], typer.Argument(metavar="FILE", help="Profile YAML files")],
                 profiles_dir: ProfilesDirOpt = None, json_out: JsonOpt = False) -> int:
    """Validate profile files; each must load and its plan must fit its own hardware."""
    results, failed = [], 0
    for path in files:
        try:
            p = load_profile_file(path, profiles_dir)
            ok, message = p.plan.fits, "ok" if p.plan.fits else "the plan does not fit the profile's hardware"
        except ProfileError as exc:
            ok, message = False, str(exc)
        failed += not ok
        results.append({"file": str(path), "valid": ok, "message": message})

    def render(console: Console) -> None:
        # One line per problem; each message line already names its file (and line).
        for r in results:
            if r["valid"]:
                console.print(plain(("ok", "green"), " ", r["file"]))
            elif r["message"].startswith(r["file"]):
                for line in r["message"].splitlines():
                    console.print(plain(("invalid", "red"), " ", line), soft_wrap=True)
            else:
                console.print(plain(("invalid", "red"), " ", r["file"], ": ", r["message"]), soft_wrap=True)

    emit(results, json_out, render)
    return 2 if failed else 0
