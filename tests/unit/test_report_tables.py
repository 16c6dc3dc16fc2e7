"""`verify` prints its checks (name, status, detail per host), `report` prints every
check of a past run, and neither reads host text as rich markup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from coderig_deploy.bench.checks import Check
from coderig_deploy.cli.report import render_run
from coderig_deploy.profiles import load_profile
from coderig_deploy.reports import host_report, run_report, write_run
from coderig_deploy.smoke import expectations

CHECKS = ["driver_branch", "ollama_version", "unit_enabled_active", "dropin_environment", "bind_address",
          "model_present", "store_owned_by_ollama", "store_not_world_writable"]
BAD = "environment differs from the plan: OLLAMA_MODELS='[/srv/models]' (plan '[bold]/x[/]') " + "and more " * 8


def _verify_report():  # type: ignore[no-untyped-def]
    exp = expectations(load_profile("dual-4090"))
    ws1 = [Check(name, "pass", "ok") for name in CHECKS]
    ws2 = [Check(name, "fail" if name == "dropin_environment" else "pass",
                 BAD if name == "dropin_environment" else "ok") for name in CHECKS]
    return run_report([host_report("ws1", None, exp, ws1), host_report("ws2", None, exp, ws2)], "dual-4090")


def _draw(draw) -> list[str]:  # type: ignore[no-untyped-def]
    console = Console(width=80, record=True, color_system=None)
    draw(console)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_verify_shows_each_check_of_each_host_in_80_columns() -> None:
    report = _verify_report()
    lines = _draw(lambda c: render_run(c, report, summary=False, all_checks=True))
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80, text
    assert lines[0].strip() == "dual-4090: FAIL"
    for name in CHECKS:
        assert sum(1 for line in lines if name in line) == 2, name  # one row per host
    failed = next(i for i, line in enumerate(lines) if "dropin_environment" in line and "fail" in line)
    assert next(i for i, line in enumerate(lines) if line.startswith("ws2")) < failed  # ws2's check
    assert "OLLAMA_MODELS='[/srv/models]'" in text and "'[bold]/x[/]')" in text  # not parsed
    assert sum(1 for line in lines if "and more" in line) >= 2  # a long detail is wrapped, not cut
    assert "tok/s" not in text and " - " not in text  # no empty benchmark columns


def test_report_prints_every_check_of_a_past_run(tmp_path: Path) -> None:
    write_run(tmp_path / "run", _verify_report())
    proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "report", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1, proc.stderr  # a failed host
    assert "Traceback" not in proc.stderr
    assert sum(1 for line in proc.stdout.splitlines() if "store_not_world_writable" in line) == 2
    assert "'[bold]/x[/]'" in proc.stdout


LONG = ("ws1.very-long-hostname.example.internal.corp", "ws1.very-long-hostname.example.internal.dev")


def test_summary_table_folds_host_names_never_cuts_them(tmp_path: Path) -> None:
    """Two hosts that differ only in a suffix stay apart at 80 columns: the host column folds."""
    exp = expectations(load_profile("dual-4090"))
    report = run_report([host_report(h, None, exp, [Check("service", "pass", "ok")]) for h in LONG], "dual-4090")
    lines = _draw(lambda c: render_run(c, report, details=False))
    joined = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "\n".join(lines)
    assert LONG[0] in joined and LONG[1] in joined, lines


def test_piped_output_takes_columns_from_the_environment(tmp_path: Path) -> None:
    """`COLUMNS=80 coderig-deploy report RUN | less` is 80 columns wide; without COLUMNS piped output is 160."""
    exp = expectations(load_profile("dual-4090"))
    write_run(tmp_path / "run", run_report([host_report(LONG[0], None, exp, [Check("x", "pass", BAD)])]))
    widths = {}
    for columns in ("80", None):
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        if columns:
            env["COLUMNS"] = columns
        proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "report", str(tmp_path / "run")],
                              capture_output=True, text=True, timeout=60, check=False, env=env)
        assert proc.returncode == 0, proc.stderr
        widths[columns] = max(len(line) for line in proc.stdout.splitlines())
    assert widths["80"] <= 80 < widths[None] <= 160, widths
