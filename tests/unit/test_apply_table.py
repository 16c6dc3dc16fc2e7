"""apply's final table: one line per host that fits 80 columns, verdict visible, and
host or reason text never read as rich markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from coderig_deploy.apply import ApplyResult
from coderig_deploy.cli.apply import _LiveView, _log_line, render_result
from coderig_deploy.profiles import load_profile
from coderig_deploy.progress import Progress, ProgressLine
from coderig_deploy.project import TargetHost, spec_for
from coderig_deploy.reports import CheckResult, HostReport
from coderig_deploy.results import HostResult

MARKUP_REASON = "apt: could not lock [/var/cache/apt/archives/lock] [bold]held[/] by pid 42"
LONG_REASON = "Ensure the model is pulled from the registry: " + "pull failed: blob unknown " * 12


def _report(host: str, verdict: str, tok_s: float | None, used: list[int | None],
            reasons: list[str]) -> HostReport:
    return HostReport(host=host, verdict=verdict,  # type: ignore[arg-type]
                      reasons=reasons, checks=[CheckResult(name="provision", status="pass", reason="ok")],
                      decode_tok_s=tok_s, expected_decode_tok_s=20.0, gpu_used_mib=used,
                      gpu_planned_mib=[23320, 23277])


def _result(tmp_path: Path) -> ApplyResult:
    names = ["big1", "workstation-with-a-very-long-name-07", "small1", "gone1"]
    spec = spec_for(load_profile("dual-4090"), [TargetHost(name=n) for n in names])
    hosts = [
        HostResult(host="big1", status="ok", ok=56, changed=12, seconds=301.5),
        HostResult(host=names[1], status="failed", ok=20, changed=3, failed=1, failed_role="models",
                   failed_task="Ensure the model", reason=LONG_REASON),
        HostResult(host="small1", status="ok", ok=50, changed=0, seconds=200.0),
        HostResult(host="gone1", status="unreachable", unreachable=1, reason=MARKUP_REASON),
    ]
    reports = [
        _report("big1", "pass", 21.37, [23400, 23310], []),
        _report(names[1], "fail", None, [], ["provision: models: " + LONG_REASON]),
        _report("small1", "warn", 17.0, [None, 23000], ["decode_speed: 17.0 tok/s below 20.0 [/x]"]),
        _report("gone1", "fail", None, [], ["provision: " + MARKUP_REASON]),
    ]
    return ApplyResult(run_dir=tmp_path / "runs" / "20261130T190000Z", status="failed", rc=2,
                       seconds=612.3, hosts=hosts, spec=spec, reports=reports)


def _draw(width: int, draw: object) -> list[str]:
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    if callable(draw):
        draw(console)
    else:
        console.print(draw)
    return [line.strip() for line in console.export_text().splitlines()]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_result_table_fits_the_terminal_one_line_per_host(tmp_path: Path, width: int) -> None:
    result = _result(tmp_path)
    lines = _draw(width, lambda c: render_result(c, result))
    table = [line for line in lines if not line.startswith(("run directory:", "details", "run the hosts"))]
    assert max(len(line) for line in table) <= width, "\n".join(lines)
    rows = {host: next(line for line in lines if line.startswith(host[:10])) for host in
            ("big1", "workstat", "small1", "gone1")}
    assert "ok" in rows["big1"] and " 12 " in rows["big1"] and "21.4" in rows["big1"]
    assert "45.6" in rows["big1"]  # 23400 + 23310 MiB in GiB
    assert " pass " in rows["big1"] + " " and " warn " in rows["small1"] + " "
    assert " fail " in rows["workstat"] and " fail " in rows["gone1"]
    assert "…" in rows["workstat"]  # the long reason is cut to one line, not wrapped
    assert sum(1 for line in lines if "models: Ensure the m" in line) == 1
    assert not any("blob unknown" in line for line in lines if line not in rows.values())
    assert "run the hosts that did not pass again: coderig-deploy apply --retry-failed" in "".join(lines)


def test_reasons_and_hosts_are_printed_as_text_not_markup(tmp_path: Path) -> None:
    lines = _draw(200, lambda c: render_result(c, _result(tmp_path)))
    text = "\n".join(lines)
    assert "[/var/cache/apt/archives/lock] [bold]held[/]" in text
    assert "below 20.0 [/x]" in text
    assert f"coderig-deploy report {tmp_path}/runs/20261130T190000Z" in text


def test_the_live_view_fits_80_columns_and_keeps_markup_as_text() -> None:
    progress = Progress(["ws1", "a-host-name-that-goes-on-and-on"])
    view = _LiveView(progress)
    progress.lines = lambda now: [  # type: ignore[method-assign]
        ProgressLine("ws1", "running", "models", "Pull [bold]x[/] " + "very long task " * 10, 12.0, 30, 4,
                     "3.1/40.0 GiB"),
        ProgressLine("a-host-name-that-goes-on-and-on", "failed", "ollama", "Unpack", 3.0, 5, 1, "[/oops]"),
    ]
    lines = _draw(80, view)
    assert len(lines) == 2 and max(len(line) for line in lines) <= 80
    assert "Pull [bold]x[/]" in lines[0] and "…" in lines[0]
    assert "failed" in lines[1] and "[/oops]" in lines[1]


def test_a_log_line_is_plain_text() -> None:
    line = _log_line(ProgressLine("ws1", "failed", "models", "Pull", 3.0, 1, 0, "reason [/var/lib]"))
    assert line.plain.endswith("models: Pull (reason [/var/lib])") and not line.spans


def test_a_fleet_shows_each_hosts_profile_within_80_columns(tmp_path: Path) -> None:
    result = _result(tmp_path)
    profiles = {"big1": "dual-4090", "small1": "budget-4070", "gone1": None}
    reports = [r.model_copy(update={"profile": profiles.get(r.host, "midrange-4090")}) for r in result.reports]
    fleet = ApplyResult(run_dir=result.run_dir, status=result.status, rc=result.rc, seconds=result.seconds,
                        hosts=result.hosts, spec=result.spec, reports=reports)
    lines = _draw(80, lambda c: render_result(c, fleet))
    table = [line for line in lines if not line.startswith(("run directory:", "details", "run the hosts"))]
    assert max(len(line) for line in table) <= 80, "\n".join(lines)
    assert "profile" in table[1]
    row = {host: next(line for line in lines if line.startswith(host)) for host in ("big1", "small1", "gone1")}
    assert "dual-4090" in row["big1"] and "budget-4070" in row["small1"] and " none " in row["gone1"]
