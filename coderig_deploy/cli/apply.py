"""`coderig-deploy apply --profile P [HOST ...]`: provision hosts and show each one's outcome."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from coderig_deploy.apply import ApplyRequest, ApplyResult, apply, apply_document
from coderig_deploy.cli import app
from coderig_deploy.cli.options import (
    AllowRebootOpt,
    ForksOpt,
    HostsArg,
    InventoryOpt,
    KeyOpt,
    ModelRegistryOpt,
    OllamaUrlOpt,
    ProfileOpt,
    ProfilesDirOpt,
    SandboxOpt,
    UserOpt,
)
from coderig_deploy.cli.output import console, emit, err_console
from coderig_deploy.events import Event
from coderig_deploy.profiles import load_profile
from coderig_deploy.progress import Progress, ProgressLine
from coderig_deploy.reports import summary_row
from coderig_deploy.targets import TargetOptions, resolve_targets

_STATE_STYLE = {"waiting": "dim", "running": "cyan", "done": "green", "failed": "bold red", "unreachable": "bold red"}
_STATUS_STYLE = {"ok": "green", "failed": "bold red", "unreachable": "bold red", "reboot required": "yellow",
                 "canceled": "yellow", "timeout": "bold red", "not run": "dim"}


@app.command(name="apply")
def apply_cmd(
    profile: ProfileOpt,
    hosts: HostsArg = None,
    inventory: InventoryOpt = None,
    user: UserOpt = None,
    key: KeyOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Dry run: report what would change")] = False,
    limit: Annotated[str | None, typer.Option(help="Ansible --limit pattern")] = None,
    tags: Annotated[list[str] | None, typer.Option(help="Run only these roles' tags")] = None,
    forks: ForksOpt = 5,
    allow_reboot: AllowRebootOpt = False,
    sandbox: SandboxOpt = False,
    model_registry: ModelRegistryOpt = None,
    ollama_url: OllamaUrlOpt = None,
    profiles_dir: ProfilesDirOpt = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go")] = Path(".coderig/runs"),
    bench: Annotated[bool, typer.Option("--bench/--no-bench",
                                        help="End with the smoke benchmark and its verdict per host")] = True,
    timeout: Annotated[int | None, typer.Option(
        min=1, max=604800, help="Stop the whole run after SECONDS; hosts not finished end as timeout (exit 1)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> int:
    """Provision hosts for a profile (driver, Ollama, model, smoke) and report each host."""
    loaded = load_profile(profile, profiles_dir)
    targets, options = resolve_targets(loaded, TargetOptions(
        hosts=hosts or [], inventory=inventory, user=user, key=key, sandbox=sandbox, forks=forks,
        allow_reboot=allow_reboot, model_registry=model_registry, ollama_url=ollama_url))
    request = ApplyRequest(profile=loaded, hosts=targets, options=options, runs_dir=runs_dir,
                           check=check, limit=limit, tags=tags or [], benchmark=bench, timeout=timeout)
    progress = Progress([t.name for t in targets])
    if json_out:
        result = apply(request, progress.apply)
        emit(apply_document(result, request), True, lambda c: None)
    else:
        result = _with_progress(request, progress)
        render_result(console, result)
    return result.exit_code


def _with_progress(request: ApplyRequest, progress: Progress) -> ApplyResult:
    """Run with a live table on a terminal, or one log line per host step elsewhere."""
    if err_console.is_terminal:
        with Live(_LiveView(progress), console=err_console, refresh_per_second=4, transient=True):
            return apply(request, progress.apply)
    last: dict[str, tuple[str, str]] = {}

    def log(event: Event) -> None:
        progress.apply(event)
        for line in progress.lines(time.time()):
            key = (line.state, line.role)
            if last.get(line.host) != key and line.state != "waiting":
                last[line.host] = key
                err_console.print(_log_line(line), highlight=False, soft_wrap=True)

    return apply(request, log)


def _log_line(line: ProgressLine) -> str:
    where = f"{line.role}: {line.task}" if line.role else line.task
    note = f" ({line.note})" if line.note else ""
    return f"{line.host:<14} {line.state:<11} {line.elapsed:6.1f}s  {where}{note}"


class _LiveView:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich__(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        for line in self.progress.lines(time.time()):
            style = _STATE_STYLE.get(line.state, "")
            task = f"{line.role}: {line.task}" if line.role else line.task
            table.add_row(line.host, f"[{style}]{line.state}[/]", f"{line.elapsed:.0f}s",
                          f"{line.tasks_done} tasks, {line.changed} changed", task + (f" ({line.note})" if line.note else ""))
        return table


_MEASURED = ("tok/s (expected)", "VRAM MiB per GPU (planned)", "offload", "context", "verdict")
_VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def render_result(out: Console, result: ApplyResult) -> None:
    table = Table(title=f"{result.spec.profile}: {result.status} in {result.seconds:.1f} s")
    for column in ("host", "status", "ok", "changed", "failed", "unreachable", "time", *_MEASURED, "reason"):
        table.add_column(column)
    rows = {r.host: summary_row(r) for r in result.reports}
    for h in result.hosts:
        where = f"{h.failed_role}: " if h.failed_role else ""
        row = rows.get(h.host, {})
        measured = [row.get(c, "-") for c in _MEASURED]
        measured[-1] = f"[{_VERDICT_STYLE.get(measured[-1], '')}]{measured[-1]}[/]"
        table.add_row(h.host, f"[{_STATUS_STYLE[h.status]}]{h.status}[/]", str(h.ok), str(h.changed),
                      str(h.failed), str(h.unreachable), f"{h.seconds:.1f}s", *measured,
                      f"{where}{h.reason}" if h.reason else _reasons(result, h.host, h.facts))
    out.print(table)
    out.print(f"run directory: {result.run_dir}")


def _reasons(result: ApplyResult, host: str, facts: dict[str, Any]) -> str:
    """A passing host's warnings, or the benchmark's reasons for a warn/fail verdict."""
    report = next((r for r in result.reports if r.host == host), None)
    reasons = "; ".join(report.reasons) if report is not None and report.reasons else ""
    return "; ".join(x for x in (reasons, _warnings(facts)) if x)


def _warnings(facts: dict[str, Any]) -> str:
    found = [w for key in ("preflight_summary", "nvidia_driver_summary")
             for w in (facts.get(key) or {}).get("warnings", [])]
    return "; ".join(f"warning: {w}" for w in found)
