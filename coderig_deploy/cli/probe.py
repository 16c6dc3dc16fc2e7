"""`coderig-deploy probe`: measure a model on hosts before downloading it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from coderig_deploy.atomicfile import write_all
from coderig_deploy.cli import app
from coderig_deploy.cli.options import SandboxOpt
from coderig_deploy.cli.output import emit, err_console, plain, text
from coderig_deploy.cli.verify import _parse_target, _sandbox_targets
from coderig_deploy.errors import CoderigError, UserInputError
from coderig_deploy.probe import measured, remote


def _progress(host: str, line: str) -> None:
    err_console.print(plain(f"{host}: {line}"), highlight=False, soft_wrap=True)


@app.command()
def probe(
    hosts: Annotated[list[str] | None, typer.Argument(help="[user@]address[:port] ...")] = None,
    model: Annotated[str, typer.Option(metavar="TAG", help="Model tag to measure (`coderig-deploy plan`)")] = ...,
    ctx: Annotated[int, typer.Option(metavar="TOKENS", help="Context (num_ctx) to measure at")] = 4096,
    sandbox: SandboxOpt = False,
    identity: Annotated[Path | None, typer.Option("--key", "--identity", help="SSH private key file")] = None,
    known_hosts: Annotated[Path | None, typer.Option(help="known_hosts file (default ~/.ssh/known_hosts)")] = None,
    runs: Annotated[int, typer.Option(min=1, max=20, help="Timed benchmark runs")] = 3,
    workdir: Annotated[str, typer.Option(help="Directory on the host for the generated file")] = "/var/tmp",
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go")] = Path(".coderig/runs"),
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Generate a GGUF with the model's exact tensors on each host, import it into Ollama,
    benchmark it at --ctx, delete it, and write calibration rows (`plan --calibration`)."""
    if bool(hosts) == sandbox:
        raise UserInputError("give HOST arguments or --sandbox (one of the two)")
    choice = remote.resolve(model, ctx)
    targets = _sandbox_targets() if sandbox else [_parse_target(h, identity, known_hosts) for h in hosts or []]
    cfg = remote.config(choice, ctx, runs, workdir)
    results = {t.name: _run(t, cfg) for t in targets}
    rows = [row for name, res in results.items() for row in remote.rows(res, choice, name)]
    from coderig_deploy.apply import new_run_dir

    run_dir = new_run_dir(runs_dir)
    write_all({run_dir / "probe.json": json.dumps(results, indent=1) + "\n",
               run_dir / "calibration.tsv": measured.to_tsv(rows)})
    doc = {"run_dir": str(run_dir), "model": choice.canonical_tag, "ctx": ctx,
           "hosts": {name: _summary(res) for name, res in results.items()},
           "rows": [r.model_dump(mode="json") for r in rows]}
    emit(doc, json_out, lambda c: _render(c, doc))
    failed = [n for n, s in doc["hosts"].items() if s["error"] or not s["clean"]]
    return 1 if failed else 0


def _run(target: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    try:
        return remote.run_on(target, cfg, _progress)
    except CoderigError as exc:  # one unreachable host does not stop the others
        return {"error": str(exc), "steps": []}


def _summary(res: dict[str, Any]) -> dict[str, Any]:
    bench = res.get("bench") or {}
    summary, ps, cleanup = bench.get("summary") or {}, bench.get("ps") or {}, res.get("cleanup") or {}
    return {"error": res.get("error"), "file_bytes": (res.get("file") or {}).get("bytes"),
            "decode_tok_s": (summary.get("decode_tok_s") or {}).get("median"),
            "prefill_tok_s": (summary.get("prefill_tok_s") or {}).get("median"),
            "gpu_percent": ps.get("gpu_percent"),
            "gpus": [g.get("used_mib") for g in (bench.get("gpu_memory") or {}).get("gpus") or []],
            "other_models_loaded": res.get("other_models_loaded") or [],
            "clean": not any(cleanup.get(k) for k in ("model_left", "blob_left", "file_left", "remove_error"))}


def _render(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title=text(f"probe {doc['model']}, ctx {doc['ctx']}; decode and prefill in tok/s"),
                  title_justify="left")
    for col in ("host", "file GB", "decode", "prefill", "GPU", "MiB per GPU", "cleaned"):
        table.add_column(col, justify="left" if col == "host" else "right", overflow="fold")
    for name, s in doc["hosts"].items():
        def num(v: float | None, fmt: str) -> str:
            return format(v, fmt) if v is not None else "-"
        table.add_row(text(name), num(s["file_bytes"] and s["file_bytes"] / 1e9, ".2f"),
                      num(s["decode_tok_s"], ".1f"), num(s["prefill_tok_s"], ".0f"),
                      num(s["gpu_percent"], ".0f") + ("%" if s["gpu_percent"] is not None else ""),
                      text(" ".join(str(m) for m in s["gpus"]) or "-"), "yes" if s["clean"] else "NO")
    console.print(table)
    for name, s in doc["hosts"].items():
        if s["error"]:
            console.print(plain(f"{name}: error: {s['error']}"), soft_wrap=True)
        if s["other_models_loaded"]:  # their memory is in the baseline; Ollama may have evicted them
            console.print(plain(f"{name}: warning: other models were loaded ({', '.join(s['other_models_loaded'])}): "
                                "the VRAM figure is less certain; probe an idle host"), soft_wrap=True)
    console.print(plain(f"calibration rows: {doc['run_dir']}/calibration.tsv "
                        f"(use with `coderig-deploy plan --calibration FILE`)"), soft_wrap=True)
