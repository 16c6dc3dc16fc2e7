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
from coderig_deploy.cli.output import emit
from coderig_deploy.reports import RunReport, read_run, summary_row

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def render_run(console: Console, report: RunReport, details: bool = True, summary: bool = True,
               all_checks: bool = False) -> None:
    """The summary table (one row per host), then the checks: every one with `all_checks`,
    else the ones that did not pass. Text from hosts is printed as text, never as markup."""
    title = Text(f"{report.profile or 'run'}: {report.verdict.upper()}")
    if summary:
        rows = [summary_row(h) for h in report.hosts]
        table = Table(title=title)
        for column in (rows[0] if rows else {"host": "", "verdict": ""}):
            table.add_column(column)
        for row in rows:
            table.add_row(*[Text(v, style=_STYLE[v] if k == "verdict" else "") for k, v in row.items()])
        console.print(table)
    if details:
        render_checks(console, report, None if summary else title, all_checks)


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
        table.add_row(Text(host if host != previous else ""), Text(check.name),
                      Text(check.status, style=_STYLE[check.status]), Text(check.reason or "-"))
        previous = host
    console.print(table)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (holds report.json)")],
    json_out: Annotated[bool, typer.Option("--json", help="Print report.json")] = False,
) -> int:
    """Print the verdicts of a past run again, with every check of every host."""
    result = read_run(run_dir)
    emit(result.model_dump(mode="json"), json_out, lambda c: render_run(c, result, all_checks=True))
    return 1 if result.verdict == "fail" else 0
