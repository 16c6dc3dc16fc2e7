"""`coderig-deploy recommend`: what to run on these GPUs, ranked, with expected speeds."""

from __future__ import annotations

import textwrap
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from coderig_deploy.cli import app
from coderig_deploy.cli.options import PowerLimitOpt
from coderig_deploy.cli.output import emit, plain
from coderig_deploy.cli.plan import NO_LIMIT_IN_ROWS
from coderig_deploy.catalog import load_catalog
from coderig_deploy.driver_branches import default_branch
from coderig_deploy.errors import UserInputError
from coderig_deploy.probe import measured
from coderig_deploy.profiles import Profile
from coderig_deploy.recommend import Choice, Recommendation, recommend
from coderig_deploy.resources import shipped_dir


class PurposeOpt(str, Enum):
    chat = "chat"
    autocomplete = "autocomplete"
    agent = "agent"


@app.command(name="recommend")
def recommend_cmd(
    gpu: Annotated[list[str] | None, typer.Option(
        metavar="SLUG", help="GPU slug (`coderig-deploy gpus`); repeat once per card")] = None,
    ram_gb: Annotated[float | None, typer.Option(
        metavar="GB", min=1, max=65_536, help="System RAM of the host, GB")] = None,
    purpose: Annotated[PurposeOpt, typer.Option(help="What the model is for")] = PurposeOpt.chat,
    limit: Annotated[int, typer.Option(metavar="N", min=1, max=100, help="How many choices to list")] = 10,
    write_profile: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Write the top choice as a profile YAML")] = None,
    calibration: Annotated[Path | None, typer.Option(
        metavar="FILE", help="Measured rows (`coderig-deploy probe`): a matching row replaces the prediction")] = None,
    power_limit: PowerLimitOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Rank the catalog's models, quantizations, contexts and KV caches that fit these GPUs."""
    if calibration and power_limit is not None:
        raise UserInputError(NO_LIMIT_IN_ROWS)
    rows = measured.read_rows(calibration) if calibration else None
    result = recommend(gpu or [], purpose.value, ram_gb, limit, rows, power_limit)
    if write_profile is not None and result.choices:
        _write_profile(write_profile, result)
    emit(result.model_dump(mode="json"), json_out, lambda c: _render(c, result))
    return 0 if result.choices else 1


def _render(console: Console, r: Recommendation) -> None:
    console.print(plain(f"{r.purpose} on {' + '.join(r.gpus)}"))
    console.print(plain(f"ranked by {r.ranking}"))
    if not r.choices:
        for reason in r.not_fitting:
            console.print(plain(textwrap.fill(f"nothing fits: {reason}", 80, subsequent_indent="  ")))
        return
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("#", "tag", "ctx", "kv", "tok/s", "pp t/s", "TTFT 4K", "free MiB"):
        table.add_column(col, justify="left" if col in ("tag", "kv") else "right", no_wrap=col == "tag")
    for c in r.choices:
        table.add_row(str(c.rank), plain(c.tag), f"{c.ctx // 1024}K", c.kv_cache, f"{c.decode_tok_s:.0f}" + ("*" if c.measured else ""),
                      f"{c.prefill_tok_s:.0f}", f"{c.ttft_4k_s:.1f} s", str(c.headroom_mib))
    console.print(table)
    if any(c.measured for c in r.choices):
        console.print("* measured on a host (`coderig-deploy probe`), not predicted")
    for reason in [*r.not_fitting, *r.notes]:
        console.print(plain(textwrap.fill(f"note: {reason}", 80, subsequent_indent="  ")))


def _write_profile(path: Path, r: Recommendation) -> None:
    if len(set(r.gpus)) != 1:
        raise UserInputError("--write-profile needs identical GPUs: a profile names one GPU model and a count")
    top: Choice = r.choices[0]
    data = {
        "description": f"{top.tag} on {len(r.gpus)}x {r.gpus[0]}"
                       + (f" at {r.power_limit_w:g} W" if r.power_limit_w is not None else "")
                       + f" ({r.purpose}), written by coderig-deploy recommend",
        "hardware": {"gpu": r.gpus[0], "count": len(r.gpus), "min_vram_mib": 0,
                     "min_ram_gib": int(r.ram_gb or 16), "min_disk_gib": 50},
        "driver": {"branch": default_branch(load_catalog().gpu(r.gpus[0]).architecture), "open_kernel_modules": True,
                   "source": "cuda-repo"},
        "ollama": {"version": _pinned_ollama_version(), "host": "127.0.0.1:11434", "keep_alive": "30m", "max_loaded_models": 1,
                   "num_parallel": 1, "flash_attention": True, "kv_cache_type": top.kv_cache},
        "model": {"tag": top.tag, "num_ctx": top.ctx},
        "expect": {"decode_tok_s": round(top.decode_tok_s * 0.8, 1), "tolerance_tok_s": round(top.decode_tok_s * 0.15, 1),
                   "gpu_percent": 100},
    }
    # A profile's name is its file's: validated under that name, so the file written is one `profiles
    # validate` and `apply --profile FILE` take as it is.
    try:
        Profile.model_validate({"name": path.stem, **data})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserInputError(f"--write-profile {path}: {where + ': ' if where else ''}"
                             f"{first['msg'].removeprefix('Value error, ')}") from None
    path.write_text("# Written by `coderig-deploy recommend`; expect.decode_tok_s is 80 % of the planned speed.\n"
                    + yaml.safe_dump(data, sort_keys=False))


def _pinned_ollama_version() -> str:
    """The Ollama release the roles pin by default (a published one: issue 13)."""
    defaults = yaml.safe_load((shipped_dir("playbooks") / "roles/ollama/defaults/main.yml").read_text())
    return str(defaults["ollama_version"])

