"""The fleet report: outcome per host, the aggregate by reason, report.md / junit.xml rows, compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from coderig_deploy.cli.report import render_comparison
from coderig_deploy.reports import CheckResult, HostReport, host_report, read_run, run_report, write_run
from coderig_deploy.reports.compare import compare
from coderig_deploy.reports.junit import parse_junit
from coderig_deploy.reports.markdown import parse_markdown_table

from tests.unit.bench.test_verdict import EXP, GOOD, _with
from tests.unit.foundation.test_bad_inputs import assert_bad, cli

PROFILE = "dual-4090"


def _host(name: str, bench: dict[str, Any] | None, status: str = "ok", role: str | None = None,
          failure: str | None = None, **fields: Any) -> HostReport:
    check = CheckResult(name="provision", status="pass" if status == "ok" else "fail",
                        reason=failure or "20 ok, 3 changed in 40.0 s", source="apply")
    rep = host_report(name, bench, EXP, leading=[check])
    return rep.model_copy(update={"profile": PROFILE, "status": status, "failed_role": role,
                                  "failure": failure, **fields})


def _fleet() -> list[HostReport]:
    return [
        _host("ws1", GOOD, ollama_version="0.33.3", driver_version="550.90", models=["qwen:32k"]),
        _host("ws2", _with(ps__context_length=2048)),
        _host("ws3", None, "unreachable", "nvidia_driver", failure="Failed to connect to the host via ssh: timed out"),
        _host("ws4", None, "failed", "preflight", "preflight: GPUs: found RTX 4070"),
        _host("ws5", None, "failed", "preflight", "preflight: GPUs: found RTX 3090"),
        _host("ws6", None, "timeout", failure="the run's time limit (20 s) ended before this host finished"),
    ]


def test_aggregate_counts_each_outcome_and_groups_hosts_by_reason() -> None:
    agg = run_report(_fleet(), PROFILE).aggregate
    assert agg is not None
    assert agg.counts == {"pass": 1, "warn": 0, "fail": 4, "unreachable": 1}
    groups = [(g.outcome, g.reason, g.hosts) for g in agg.by_reason]
    assert groups == [("fail", "failed in preflight", ["ws4", "ws5"]), ("fail", "context", ["ws2"]),
                      ("fail", "timeout", ["ws6"]), ("unreachable", "unreachable", ["ws3"])]


def test_report_md_has_a_row_per_host_with_profile_reason_and_the_aggregate(tmp_path: Path) -> None:
    write_run(tmp_path, run_report(_fleet(), PROFILE))
    text = (tmp_path / "report.md").read_text()
    rows = {r["host"]: r for r in parse_markdown_table(text)}
    assert list(rows) == ["ws1", "ws2", "ws3", "ws4", "ws5", "ws6"]
    assert rows["ws1"]["profile (why)"] == "dual-4090 (given on the command line)"
    assert rows["ws1"]["tok/s (expected)"] == "38.0 (40.0)" and rows["ws1"]["reason"] == "-"
    assert rows["ws3"]["verdict"] == "unreachable"
    assert rows["ws4"]["reason"] == "preflight: GPUs: found RTX 4070"
    assert "**6 hosts:** 1 pass, 0 warn, 4 fail, 1 unreachable" in text
    assert "- fail, failed in preflight: 2 (ws4, ws5)" in text


def test_an_auto_profile_shows_its_own_reason(tmp_path: Path) -> None:
    host = _host("ws1", GOOD).model_copy(update={"profile": "budget-4070",
                                                 "profile_reason": "auto: 1x RTX 4070 12 GiB"})
    write_run(tmp_path, run_report([host], None))
    rows = parse_markdown_table((tmp_path / "report.md").read_text())
    assert rows[0]["profile (why)"] == "budget-4070 (auto: 1x RTX 4070 12 GiB)"


def test_junit_carries_outcome_and_profile_per_host(tmp_path: Path) -> None:
    write_run(tmp_path, run_report(_fleet(), PROFILE))
    import xml.etree.ElementTree as ET

    suites = {s.get("name"): s for s in ET.parse(tmp_path / "junit.xml").getroot().iter("testsuite")}
    props = {p.get("name"): p.get("value") for p in suites["ws3"].iter("property")}
    assert props == {"outcome": "unreachable", "profile": PROFILE, "profile_reason": "given on the command line",
                     "failure": "Failed to connect to the host via ssh: timed out"}
    assert any(c.host == "ws3" and c.name == "provision" and c.outcome == "failure"
               for c in parse_junit((tmp_path / "junit.xml").read_text()))


def test_a_report_without_the_fleet_fields_still_reads(tmp_path: Path) -> None:
    """report.json files written before the fleet fields existed stay readable."""
    old = json.loads(run_report([host_report("ws-1", GOOD, EXP)], PROFILE).model_dump_json())
    for key in ("aggregate",):
        old.pop(key)
    for key in ("profile", "profile_reason", "status", "failure", "failed_role", "ollama_version",
                "driver_version", "models"):
        old["hosts"][0].pop(key)
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert read_run(tmp_path).hosts[0].profile is None


def _pair() -> tuple[Any, Any]:
    a = run_report([_host("ws1", GOOD, ollama_version="0.33.2", driver_version="550.90", models=["m:8k"]),
                    _host("ws2", GOOD), _host("gone", GOOD)], PROFILE)
    slower = _with(**{"summary__decode_tok_s__median": 30.0})
    b = run_report([_host("ws1", slower, ollama_version="0.33.3", driver_version="550.90",
                          models=["m:8k", "m:32k"]), _host("ws2", GOOD), _host("new", GOOD)], PROFILE)
    return a, b


def test_compare_lists_only_what_drifted_and_hosts_in_one_run() -> None:
    drift = compare(*_pair())
    assert drift.only_in_a == ["gone"] and drift.only_in_b == ["new"]
    changes = {h.host: {c.field: (c.a, c.b, c.delta) for c in h.changes} for h in drift.hosts}
    assert changes["ws2"] == {}
    assert changes["ws1"]["tok/s"] == ("38.0", "30.0", "-8.0 (-21%)")
    assert changes["ws1"]["ollama"] == ("0.33.2", "0.33.3", "")
    assert changes["ws1"]["models"] == ("m:8k", "m:32k, m:8k", "")
    assert "driver" not in changes["ws1"]


def test_compare_vram_per_gpu() -> None:
    a = run_report([_host("ws1", GOOD)], PROFILE)
    more = _with(**{"gpu_memory__gpus": [{"index": 0, "used_mib": 21000}, {"index": 1, "used_mib": 21500}]})
    b = run_report([_host("ws1", more)], PROFILE)
    changes = {c.field: (c.a, c.b, c.delta) for c in compare(a, b).hosts[0].changes}
    assert changes == {"VRAM GPU1 MiB": ("19500", "21500", "+2000")}


def test_compare_table_fits_80_columns_on_a_wide_terminal() -> None:
    a, b = _pair()
    b.hosts[0].models = ["qwen2.5-coder:32b-instruct-q4_K_M-ctx32768", "deepseek-coder-v2:16b-lite"]
    console = Console(width=200, record=True, color_system=None)
    render_comparison(console, compare(a, b, "/runs/20261130T000000Z", "/runs/20261130T010000Z"))
    lines = console.export_text().splitlines()
    table = lines[2:]
    assert max(len(line) for line in table) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    assert "only in A: gone" in text and "only in B: new" in text and "no drift" in text


def test_compare_cli_json_and_bad_input(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    a, b = _pair()
    for name, rep in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        write_run(tmp_path / name, rep)
    code, out, _ = cli(capsys, monkeypatch, "report", "--compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json")
    assert code == 0 and json.loads(out)["only_in_b"] == ["new"]
    assert_bad(*cli(capsys, monkeypatch, "report", "--compare", str(tmp_path / "a"), str(tmp_path / "nope")),
               "nope: no report here")
    assert_bad(*cli(capsys, monkeypatch, "report", str(tmp_path / "a"), "--compare", str(tmp_path / "a"),
                    str(tmp_path / "b")), "not both")
    assert_bad(*cli(capsys, monkeypatch, "report"), "--compare RUN_A RUN_B")


def test_report_prints_the_aggregate_as_plain_text(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    fleet = _fleet()
    fleet[2] = fleet[2].model_copy(update={"host": "[bold]ws3"})
    write_run(tmp_path, run_report(fleet, PROFILE))
    code, out, _ = cli(capsys, monkeypatch, "report", str(tmp_path))
    assert code == 1
    assert "6 hosts: 1 pass, 0 warn, 4 fail, 1 unreachable" in out
    assert "  unreachable, unreachable: [bold]ws3" in out
    assert "  fail, failed in preflight: ws4, ws5" in out
