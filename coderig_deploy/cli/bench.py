"""`coderig-deploy bench`: run the smoke benchmark from here against an Ollama URL."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer

from coderig_deploy.bench.core import BenchConfig, Benchmark
from coderig_deploy.bench.editor import EditorModel
from coderig_deploy.bench.ollama_api import DEFAULT_URL
from coderig_deploy.bench.verdict import Expectations
from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit
from coderig_deploy.cli.report import render_run
from coderig_deploy.errors import BenchError, UserInputError
from coderig_deploy.profiles import load_profile
from coderig_deploy.reports import host_report, run_report, write_run


def _no_gpu_probe(_prefer: str) -> dict:
    return {"source": None, "gpus": [], "error": "remote server: GPU memory not read from here"}


@app.command()
def bench(
    host: Annotated[str, typer.Option(help="Ollama base URL")] = DEFAULT_URL,
    model: Annotated[str | None, typer.Option(help="Model tag (default: the profile's)")] = None,
    profile: Annotated[str | None, typer.Option(help="Judge against this profile")] = None,
    profiles_dir: Annotated[Path | None, typer.Option(help="Extra directory of profiles")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed repetitions")] = 5,
    num_predict: Annotated[int, typer.Option(min=1, help="Tokens generated per run")] = 128,
    code_check: Annotated[bool, typer.Option(help="Run the code-check tasks")] = True,
    editor: Annotated[bool, typer.Option(help="With --profile: the editor checks of each of its models")] = True,
    out: Annotated[Path | None, typer.Option(help="Write report.json/.md/junit.xml here")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Benchmark a model: load time, decode/prefill tok/s, TTFT, VRAM fit, code check."""
    prof = load_profile(profile, profiles_dir) if profile else None
    if prof is None and model is None:
        raise UserInputError("give --model or --profile")
    from coderig_deploy import smoke

    exp = smoke.expectations(prof) if prof else Expectations(require_code_check=code_check)
    editors = tuple(EditorModel(r.variant_name, r.role) for r in prof.all_models) if prof and editor else ()
    host = ollama_base_url(host)
    if out and out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: not a directory (report.json, report.md and junit.xml go in it)")
    cfg = BenchConfig(model=model or smoke.bench_model(prof), url=host, runs=runs,  # type: ignore[arg-type]
                      num_predict=num_predict, code_check=code_check, editor_models=editors)
    local = urlparse(host).hostname in ("127.0.0.1", "localhost", "::1")
    runner = Benchmark(cfg) if local else Benchmark(cfg, gpu_reader=_no_gpu_probe)
    if not local:
        exp = dataclasses.replace(exp, planned_gpu_mib={})
    try:
        result = runner.run()
    except BenchError as exc:
        result = runner.result
        result["error"] = str(exc)
    name = urlparse(host).hostname or host
    rep = run_report([host_report(name, result, exp)], prof.name if prof else None, cfg.model)
    if out:
        write_run(out, rep)
    emit(rep.model_dump(mode="json"), json_out, lambda c: render_run(c, rep))
    return 1 if rep.verdict == "fail" else 0


def ollama_base_url(text: str) -> str:
    """--host as a base URL: http(s)://host[:port], or host:port as OLLAMA_HOST writes it (http then)."""
    url = text if "://" in text else f"http://{text}"
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise UserInputError(f"--host {text!r}: not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or any(c.isspace() for c in text):
        raise UserInputError(f"--host {text!r}: give Ollama's base URL, http://HOST:PORT or https://HOST:PORT")
    return url
