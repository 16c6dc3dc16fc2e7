"""`coderig-deploy report RUN_DIR`: print a past run again (table, or --json)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit, text
from coderig_deploy.errors import UserInputError
from coderig_deploy.reports import RunReport, read_run, summary_row
from coderig_deploy.reports.compare import Change, Comparison, compare

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def render_run(console: Console, report: RunReport, details: bool = True, summary: bool = True,
               all_checks: bool = False) -> None:
    """The summary table (one row per host), then the checks: every one with `all_checks`,
    else the ones that did not pass. Text from hosts is printed as text, never as markup."""
    title = text(f"{report.profile or 'run'}: {report.verdict.upper()}")
    if summary:
        rows = [summary_row(h) for h in report.hosts]
        table = Table(title=title)
        for column in (rows[0] if rows else {"host": "", "verdict": ""}):
            table.add_column(column, overflow="fold")  # host names that differ in a suffix stay apart
        for row in rows:
            table.add_row(*[text(v, style=_STYLE[v] if k == "verdict" else "") for k, v in row.items()])
        console.print(table)
        render_aggregate(console, report)
    if details:
        render_checks(console, report, None if summary else title, all_checks)


def render_aggregate(console: Console, report: RunReport) -> None:
    """`N hosts: a pass, b warn, ...`, then one line per group of hosts that did not pass."""
    if report.aggregate is None:
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in report.aggregate.counts.items())
    console.print(text(f"{len(report.hosts)} hosts: {counts}"), soft_wrap=True)
    for group in report.aggregate.by_reason:
        console.print(text(f"  {group.outcome}, {group.reason}: {', '.join(group.hosts)}"), soft_wrap=True)


def render_checks(console: Console, report: RunReport, title: Text | None = None,
                  all_checks: bool = True) -> None:
    """One row per host and check: name, status and the detail (wrapped, never cut)."""
    shown = [(host.host, check) for host in report.hosts for check in host.checks
             if all_checks or check.status != "pass" or host.verdict == "pass" and check.name == "code_check"]
    if not shown:
        return
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("host", max_width=16, overflow="fold")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", ratio=1, overflow="fold")
    previous = None
    for host, check in shown:
        table.add_row(text(host if host != previous else ""), text(check.name),
                      text(check.status, style=_STYLE[check.status]), text(check.reason or "-"))
        previous = host
    console.print(table)


def render_comparison(console: Console, drift: Comparison) -> None:
    """One line per host and drifted field (at most 80 columns); then the hosts in one run only."""
    console.print(text(f"A: {drift.a}\nB: {drift.b}"), soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("host", max_width=14, overflow="fold")
    table.add_column("field", max_width=14, no_wrap=True)
    for name in ("A", "B"):
        table.add_column(name, max_width=18, overflow="fold")
    table.add_column("change", max_width=13, overflow="fold")
    for host in drift.hosts:
        changes = host.changes or [Change(field="-", a="no drift", b="", delta="")]
        for i, change in enumerate(changes):
            table.add_row(text(host.host if i == 0 else ""), text(change.field), text(change.a),
                          text(change.b), text(change.delta))
    console.print(table, width=min(console.width, 80))
    for label, names in (("only in A", drift.only_in_a), ("only in B", drift.only_in_b)):
        if names:
            console.print(text(f"{label}: {', '.join(names)}"), soft_wrap=True)


@app.command()
def report(
    run_dir: Annotated[Path | None, typer.Argument(help="A run directory (holds report.json)")] = None,
    compare_runs: Annotated[tuple[Path, Path] | None, typer.Option(
        "--compare", metavar="RUN_A RUN_B",
        help="Show what drifted per host from RUN_A to RUN_B: tok/s, VRAM, versions, models")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print report.json (or the comparison)")] = False,
) -> int:
    """Print the verdicts of a past run again, with every check of every host."""
    if compare_runs is not None:
        if run_dir is not None:
            raise UserInputError("give either RUN_DIR or --compare RUN_A RUN_B, not both")
        run_a, run_b = compare_runs
        drift = compare(read_run(run_a), read_run(run_b), str(run_a), str(run_b))
        emit(drift.model_dump(mode="json"), json_out, lambda c: render_comparison(c, drift))
        return 0
    if run_dir is None:
        raise UserInputError("give a run directory (RUN_DIR) or --compare RUN_A RUN_B")
    result = read_run(run_dir)
    emit(result.model_dump(mode="json"), json_out, lambda c: render_run(c, result, all_checks=True))
    return 1 if result.verdict == "fail" else 0
