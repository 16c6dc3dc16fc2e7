"""`coderig-deploy apply --profile P [HOST ...]`: provision hosts and show each one's outcome."""

from __future__ import annotations

import time
from dataclasses import replace
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
    ProfilesDirOpt,
    SandboxOpt,
    UserOpt,
)
from coderig_deploy.cli.output import console, emit, err_console, text
from coderig_deploy.detect.fleet import is_fleet, plan_fleet
from coderig_deploy.errors import UserInputError
from coderig_deploy.events import Event
from coderig_deploy.fleet.retry import RETRY_STATUSES, Invocation, load_retry
from coderig_deploy.profiles import load_profile
from coderig_deploy.progress import Progress, ProgressLine
from coderig_deploy.reports import HostReport
from coderig_deploy.targets import TargetOptions, only_targets, resolve_targets

_STATE_STYLE = {"waiting": "dim", "running": "cyan", "done": "green", "failed": "bold red", "unreachable": "bold red"}
_STATUS_STYLE = {"ok": "green", "failed": "bold red", "unreachable": "bold red", "reboot required": "yellow",
                 "canceled": "yellow", "timeout": "bold red", "not run": "dim"}


RetryFailedOpt = Annotated[Path | None, typer.Option(
    "--retry-failed", metavar="RUN_DIR",
    help="Run again only the hosts of RUN_DIR that failed, were unreachable or timed out, with that "
         "run's profile and options (only --runs-dir, --json and --accept-new-host-keys are taken "
         "from this command line)")]


@app.command(name="apply")
def apply_cmd(
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Profile name or YAML path for every host, or `auto`: detect each host and pick the "
                          "best profile that fits it; an inventory's coderig_profile (per host or group) wins")
    ] = None,
    hosts: HostsArg = None,
    inventory: InventoryOpt = None,
    user: UserOpt = None,
    key: KeyOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Dry run: report what would change")] = False,
    limit: Annotated[str | None, typer.Option(
        help="Ansible --limit pattern: only matching hosts run; the others are left out of the report")] = None,
    tags: Annotated[list[str] | None, typer.Option(help="Run only these roles' tags")] = None,
    forks: ForksOpt = None,
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
    retry_failed: RetryFailedOpt = None,
) -> int:
    """Provision hosts for a profile (driver, Ollama, model, smoke) and report each host."""
    if retry_failed is not None:
        given = [name for name, value in (("--profile", profile), ("HOST", hosts), ("-i", inventory),
                                          ("--sandbox", sandbox), ("--limit", limit)) if value]
        if given:
            raise UserInputError(f"--retry-failed runs the hosts and profile of that run: drop {', '.join(given)}")
        plan = load_retry(retry_failed)
        if not plan.hosts:
            err_console.print(text(f"nothing to retry: every host of {plan.run_dir} passed or was not run"))
            return 0
        err_console.print(text("retrying " + ", ".join(f"{h} ({why})" for h, why in plan.hosts.items())))
        # The retry's inventory holds the retried hosts only, so the run's --limit has no more work to do.
        invocation = plan.invocation.model_copy(update={"only_hosts": list(plan.hosts), "limit": None})
        retry_of: Path | None = plan.run_dir
    else:
        invocation = Invocation(
            profile=_absolute_if_file(profile) if profile else None, profiles_dir=_absolute(profiles_dir), hosts=hosts or [],
            inventory=_absolute(inventory), user=user, key=_absolute(key), sandbox=sandbox, forks=forks,
            allow_reboot=allow_reboot, model_registry=model_registry, ollama_url=ollama_url,
            ollama_sha256=ollama_sha256, model_digest=model_digest, allow_unpinned=allow_unpinned, check=check,
            limit=limit, tags=tags or [], bench=bench, timeout=timeout, bundle=_absolute(bundle),
            allowed_signers=_absolute(allowed_signers))
        retry_of = None
    request = build_request(invocation, runs_dir, accept_new_host_keys, retry_of)
    if accept_new_host_keys:
        err_console.print("--accept-new-host-keys: keys of hosts not yet in known_hosts will be recorded "
                          "unchecked (trust on first use); changed keys are still refused", highlight=False)
    progress = Progress([t.name for t in request.hosts])
    if json_out:
        result = apply(request, progress.apply)
        emit(apply_document(result, request), True, lambda c: None)
    else:
        result = _with_progress(request, progress)
        render_result(console, result)
    for check in dict.fromkeys(result.release_checks.values()) if not json_out else ():
        err_console.print(text(check.line()), highlight=False, soft_wrap=True)
    for line in result.host_keys_recorded:
        err_console.print(text(f"recorded new host key (--accept-new-host-keys): {line}"), highlight=False)
    return result.exit_code


def build_request(inv: Invocation, runs_dir: Path, accept_new_host_keys: bool,
                  retry_of: Path | None = None) -> ApplyRequest:
    """The apply an invocation asks for: one profile for every host, or a fleet (`--profile
    auto`, an inventory's coderig_profile) with a profile per host. A retry's is narrowed
    to its hosts before anything is detected on them."""
    path = (lambda value: Path(value) if value else None)  # noqa: E731
    bundle, allowed_signers = path(inv.bundle), path(inv.allowed_signers)
    if bundle is not None:
        refuse_other_sources({"--ollama-url": inv.ollama_url, "--ollama-sha256": inv.ollama_sha256,
                              "--model-registry": inv.model_registry, "--model-digest": inv.model_digest})
    elif allowed_signers is not None:
        raise UserInputError("--allowed-signers checks a bundle's signature: give --bundle DIR too")
    target_opts = TargetOptions(
        hosts=inv.hosts, inventory=path(inv.inventory), user=inv.user, key=path(inv.key), sandbox=inv.sandbox,
        forks=inv.forks, allow_reboot=inv.allow_reboot, model_registry=inv.model_registry,
        ollama_url=inv.ollama_url, ollama_sha256=inv.ollama_sha256, model_digest=inv.model_digest,
        allow_unpinned=inv.allow_unpinned)
    profiles_dir = path(inv.profiles_dir)
    fleet = (plan_fleet(inv.profile, target_opts, profiles_dir, only=inv.only_hosts)
             if is_fleet(inv.profile, target_opts.inventory) else None)
    if fleet is not None:
        loaded, targets, options = fleet.first.profile, fleet.hosts, fleet.first.options
        if bundle is not None and len(fleet.groups) > 1:
            raise UserInputError("--bundle carries one profile's artifacts: this run's hosts have "
                                 f"{len(fleet.groups)} profiles; run one apply --bundle per profile")
    else:
        loaded = load_profile(inv.profile or "", profiles_dir)
        targets, options = resolve_targets(loaded, target_opts)
        if inv.only_hosts is not None:
            targets = only_targets(targets, inv.only_hosts)
    if bundle is not None:
        options = with_bundle(options, bundle, allowed_signers, loaded)
    groups = [replace(fleet.first, options=options)] + fleet.groups[1:] if fleet else []
    return ApplyRequest(profile=loaded, hosts=targets, options=options, runs_dir=runs_dir,
                        check=inv.check, limit=inv.limit, tags=inv.tags, benchmark=inv.bench,
                        accept_new_host_keys=accept_new_host_keys, timeout=inv.timeout,
                        groups=groups, unmatched=fleet.unmatched if fleet else {},
                        invocation=inv.model_dump(mode="json"), retry_of=retry_of)


def _absolute(value: Path | None) -> str | None:
    return str(value.resolve()) if value is not None else None


def _absolute_if_file(profile: str) -> str:
    """A profile given as a file path is kept absolute, so a retry finds it from anywhere."""
    return str(Path(profile).resolve()) if Path(profile).is_file() else profile


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
    return text(f"{line.host:<14} {line.state:<11} {line.elapsed:6.1f}s  {where}{note}")


def _cell(value: str, style: str = "") -> Text:
    """A one-line cell: cut with an ellipsis where the column ends, never wrapped."""
    return text(value, style=style, no_wrap=True, overflow="ellipsis")


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
    table = Table(title=text(f"{result.profile_label}: {result.status} in {result.seconds:.1f} s"),
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  title_justify="left")
    table.add_column("host", max_width=16)
    reports = {r.host: r for r in result.reports}
    fleet = len({r.profile for r in result.reports}) > 1
    if fleet:  # hosts of several profiles (or none): say which
        table.add_column("profile", max_width=14)
    table.add_column("status", no_wrap=True)
    table.add_column("chg", justify="right", no_wrap=True)
    table.add_column("tok/s", justify="right", no_wrap=True)
    table.add_column("VRAM", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=7)
    table.add_column("reason", ratio=1)
    for h in result.hosts:
        report = reports.get(h.host)
        verdict = report.verdict if report else "-"
        where = f"{h.failed_role}: " if h.failed_role else ""
        reason = f"{where}{h.reason}" if h.reason else _reasons(result, h.host, h.facts)
        profile = [_cell((report.profile if report else None) or "none")] if fleet else []
        table.add_row(_cell(h.host), *profile, _cell(h.status, _STATUS_STYLE.get(h.status, "")), str(h.changed),
                      _tok_s(report), _vram_gib(report), _cell(verdict, _VERDICT_STYLE.get(verdict, "")),
                      _cell(" ".join(reason.split()) or "-"))
    out.print(table)
    out.print(text(f"run directory: {result.run_dir}"), soft_wrap=True)
    out.print(text(f"details (also in report.md there): coderig-deploy report {result.run_dir}"), soft_wrap=True)
    if any(h.status in RETRY_STATUSES for h in result.hosts) or any(r.verdict == "fail" for r in result.reports):
        out.print(text(f"run the hosts that did not pass again: coderig-deploy apply --retry-failed {result.run_dir}"),
                  soft_wrap=True)


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
