"""`coderig-deploy apply --profile P [HOST ...]`: provision hosts and show each one's outcome."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from coderig_deploy.apply import ApplyRequest, ApplyResult, apply, apply_document
from coderig_deploy.bundle.apply_options import refuse_other_sources, with_bundle
from coderig_deploy.cli import app
from coderig_deploy.cli.options import (
    AcceptNewHostKeysOpt,
    AllowedSignersOpt,
    AllowRebootOpt,
    AllowUnpinnedOpt,
    BundleOpt,
    ForksOpt,
    HostsArg,
    InventoryOpt,
    KeyOpt,
    ModelDigestOpt,
    ModelRegistryOpt,
    OllamaSha256Opt,
    OllamaUrlOpt,
    ProfileOpt,
    ProfilesDirOpt,
    SandboxOpt,
    UserOpt,
)
from coderig_deploy.cli.output import console, emit, err_console
from coderig_deploy.errors import UserInputError
from coderig_deploy.events import Event
from coderig_deploy.profiles import load_profile
from coderig_deploy.progress import Progress, ProgressLine
from coderig_deploy.reports import HostReport
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
    ollama_sha256: OllamaSha256Opt = None,
    model_digest: ModelDigestOpt = None,
    allow_unpinned: AllowUnpinnedOpt = False,
    profiles_dir: ProfilesDirOpt = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go")] = Path(".coderig/runs"),
    bench: Annotated[bool, typer.Option("--bench/--no-bench",
                                        help="End with the smoke benchmark and its verdict per host")] = True,
    timeout: Annotated[int | None, typer.Option(
        min=1, max=604800, help="Stop the whole run after SECONDS; hosts not finished end as timeout (exit 1)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
    accept_new_host_keys: AcceptNewHostKeysOpt = False,
    bundle: BundleOpt = None,
    allowed_signers: AllowedSignersOpt = None,
) -> int:
    """Provision hosts for a profile (driver, Ollama, model, smoke) and report each host."""
    loaded = load_profile(profile, profiles_dir)
    if bundle is not None:
        refuse_other_sources({"--ollama-url": ollama_url, "--ollama-sha256": ollama_sha256,
                              "--model-registry": model_registry, "--model-digest": model_digest})
    elif allowed_signers is not None:
        raise UserInputError("--allowed-signers checks a bundle's signature: give --bundle DIR too")
    targets, options = resolve_targets(loaded, TargetOptions(
        hosts=hosts or [], inventory=inventory, user=user, key=key, sandbox=sandbox, forks=forks,
        allow_reboot=allow_reboot, model_registry=model_registry, ollama_url=ollama_url,
        ollama_sha256=ollama_sha256, model_digest=model_digest, allow_unpinned=allow_unpinned))
    if bundle is not None:
        options = with_bundle(options, bundle, allowed_signers, loaded)
    request = ApplyRequest(profile=loaded, hosts=targets, options=options, runs_dir=runs_dir,
                           check=check, limit=limit, tags=tags or [], benchmark=bench,
                           accept_new_host_keys=accept_new_host_keys, timeout=timeout)
    if accept_new_host_keys:
        err_console.print("--accept-new-host-keys: keys of hosts not yet in known_hosts will be recorded "
                          "unchecked (trust on first use); changed keys are still refused", highlight=False)
    progress = Progress([t.name for t in targets])
    if json_out:
        result = apply(request, progress.apply)
        emit(apply_document(result, request), True, lambda c: None)
    else:
        result = _with_progress(request, progress)
        render_result(console, result)
    if result.release_check is not None and not json_out:
        err_console.print(result.release_check.line(), markup=False, highlight=False, soft_wrap=True)
    for line in result.host_keys_recorded:
        err_console.print(f"recorded new host key (--accept-new-host-keys): {line}", markup=False, highlight=False)
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


def _log_line(line: ProgressLine) -> Text:
    """One plain line per host step (host and task text are never read as markup)."""
    where = f"{line.role}: {line.task}" if line.role else line.task
    note = f" ({line.note})" if line.note else ""
    return Text(f"{line.host:<14} {line.state:<11} {line.elapsed:6.1f}s  {where}{note}")


def _cell(text: str, style: str = "") -> Text:
    """A one-line cell: cut with an ellipsis where the column ends, never wrapped."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


class _LiveView:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich__(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(max_width=16)
        for _ in range(3):
            table.add_column(no_wrap=True)
        table.add_column(ratio=1)  # the task: takes what is left, cut to one line
        for line in self.progress.lines(time.time()):
            task = f"{line.role}: {line.task}" if line.role else line.task
            table.add_row(_cell(line.host), _cell(line.state, _STATE_STYLE.get(line.state, "")),
                          f"{line.elapsed:.0f}s", f"{line.tasks_done} tasks, {line.changed} chg",
                          _cell(task + (f" ({line.note})" if line.note else "")))
        return table


_VERDICT_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def render_result(out: Console, result: ApplyResult) -> None:
    """A compact table (one line per host, fits 80 columns); the details are in the report."""
    table = Table(title=Text(f"{result.spec.profile}: {result.status} in {result.seconds:.1f} s"),
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  title_justify="left")
    table.add_column("host", max_width=16)
    table.add_column("status", no_wrap=True)
    table.add_column("chg", justify="right", no_wrap=True)
    table.add_column("tok/s", justify="right", no_wrap=True)
    table.add_column("VRAM", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=7)
    table.add_column("reason", ratio=1)
    reports = {r.host: r for r in result.reports}
    for h in result.hosts:
        report = reports.get(h.host)
        verdict = report.verdict if report else "-"
        where = f"{h.failed_role}: " if h.failed_role else ""
        reason = f"{where}{h.reason}" if h.reason else _reasons(result, h.host, h.facts)
        table.add_row(_cell(h.host), _cell(h.status, _STATUS_STYLE.get(h.status, "")), str(h.changed),
                      _tok_s(report), _vram_gib(report), _cell(verdict, _VERDICT_STYLE.get(verdict, "")),
                      _cell(" ".join(reason.split()) or "-"))
    out.print(table)
    out.print(Text(f"run directory: {result.run_dir}"), soft_wrap=True)
    out.print(Text(f"details (also in report.md there): coderig-deploy report {result.run_dir}"), soft_wrap=True)


def _tok_s(report: HostReport | None) -> str:
    return "-" if report is None or report.decode_tok_s is None else f"{report.decode_tok_s:.1f}"


def _vram_gib(report: HostReport | None) -> str:
    """Driver-reported use summed over the host's GPUs (per GPU and plan: see the report)."""
    used = [u for u in (report.gpu_used_mib if report else []) if u is not None]
    return f"{sum(used) / 1024:.1f}G" if used else "-"


def _reasons(result: ApplyResult, host: str, facts: dict[str, Any]) -> str:
    """A passing host's warnings, or the benchmark's reasons for a warn/fail verdict."""
    report = next((r for r in result.reports if r.host == host), None)
    reasons = "; ".join(report.reasons) if report is not None and report.reasons else ""
    return "; ".join(x for x in (reasons, _warnings(facts)) if x)


def _warnings(facts: dict[str, Any]) -> str:
    found = [w for key in ("preflight_summary", "nvidia_driver_summary")
             for w in (facts.get(key) or {}).get("warnings", [])]
    return "; ".join(f"warning: {w}" for w in found)
