"""`coderig-deploy report RUN_DIR`: print a past run again (table, or --json)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit
from coderig_deploy.reports import RunReport, read_run, summary_row

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def render_run(console: Console, report: RunReport, details: bool = True) -> None:
    """The summary table (one row per host), then each host's non-passing checks."""
    rows = [summary_row(h) for h in report.hosts]
    table = Table(title=f"{report.profile or 'run'}: {report.verdict.upper()}")
    for column in (rows[0] if rows else {"host": "", "verdict": ""}):
        table.add_column(column)
    for row in rows:
        style = _STYLE[row["verdict"]]
        table.add_row(*[f"[{style}]{v}[/]" if k == "verdict" else v for k, v in row.items()])
    console.print(table)
    for host in report.hosts if details else []:
        for check in host.checks:
            if check.status != "pass" or host.verdict == "pass" and check.name == "code_check":
                console.print(f"  {host.host} [{_STYLE[check.status]}]{check.status}[/] "
                              f"{check.name}: {check.reason}", soft_wrap=True)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (holds report.json)")],
    json_out: Annotated[bool, typer.Option("--json", help="Print report.json")] = False,
) -> int:
    """Print the verdicts of a past run again."""
    result = read_run(run_dir)
    emit(result.model_dump(mode="json"), json_out, lambda c: render_run(c, result))
    return 1 if result.verdict == "fail" else 0
