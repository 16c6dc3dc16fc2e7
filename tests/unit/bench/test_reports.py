"""report.json / report.md / junit.xml: written, read back, and equal to what was judged."""

import json
from pathlib import Path

import pytest

from coderig_deploy.bench.checks import Check
from coderig_deploy.errors import UserInputError
from coderig_deploy.reports import host_report, read_run, run_report, write_run
from coderig_deploy.reports.junit import parse_junit
from coderig_deploy.reports.markdown import parse_markdown_table

from .test_verdict import EXP, GOOD, _with


def _run():
    hosts = [host_report("ws-1", GOOD, EXP),
             host_report("ws-2", _with(ps__context_length=2048), EXP),
             host_report("ws-3", {"error": "cannot reach Ollama"}, EXP,
                         [Check("unit_enabled_active", "fail", "ollama.service is not active")])]
    return run_report(hosts, "dual-4090", "qwen2.5-coder:32b")


def test_run_verdict_is_worst_host() -> None:
    rep = _run()
    assert [h.verdict for h in rep.hosts] == ["pass", "fail", "fail"] and rep.verdict == "fail"


def test_round_trip_json(tmp_path: Path) -> None:
    rep = _run()
    write_run(tmp_path, rep)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["schema_version"] == 1
    assert read_run(tmp_path) == rep


def test_markdown_table_parses_back(tmp_path: Path) -> None:
    write_run(tmp_path, _run())
    rows = parse_markdown_table((tmp_path / "report.md").read_text())
    assert [r["host"] for r in rows] == ["ws-1", "ws-2", "ws-3"]
    assert [r["verdict"] for r in rows] == ["pass", "fail", "fail"]
    assert rows[0]["tok/s (expected)"] == "38.0 (40.0)"
    assert rows[0]["VRAM MiB per GPU (planned)"] == "21000 (20500) / 19500 (20000)"
    assert rows[1]["context"] == "2048 (32768)"


def test_junit_one_case_per_host_and_check(tmp_path: Path) -> None:
    rep = _run()
    write_run(tmp_path, rep)
    cases = parse_junit((tmp_path / "junit.xml").read_text())
    assert len(cases) == sum(len(h.checks) for h in rep.hosts)
    by_key = {(c.host, c.name): c for c in cases}
    assert by_key[("ws-1", "decode_speed")].outcome == "passed"
    assert by_key[("ws-2", "context")].outcome == "failure"
    assert "2048" in by_key[("ws-2", "context")].message
    assert by_key[("ws-3", "decode_speed")].outcome == "skipped"
    assert by_key[("ws-3", "unit_enabled_active")].outcome == "failure"


def test_reading_a_non_run_dir_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no report here"):
        read_run(tmp_path)
    (tmp_path / "report.json").write_text('{"schema_version": 99}')
    with pytest.raises(UserInputError, match="schema_version 99"):
        read_run(tmp_path)


@pytest.mark.parametrize(("content", "message"), [
    (b"\xff\xfe{}", r"not UTF-8 text \(byte 0\)"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b"[1]", "a JSON list, not a report"),
    (b"null", "a JSON NoneType, not a report"),
])
def test_files_that_are_not_reports_are_user_errors(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "report.json").write_bytes(content)
    with pytest.raises(UserInputError, match=message):
        read_run(tmp_path)


def _edited(tmp_path: Path, edit) -> Path:
    write_run(tmp_path, _run())
    path = tmp_path / "report.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


def test_a_run_verdict_its_hosts_do_not_give_is_refused(tmp_path: Path) -> None:
    """A CI gate on `report RUN` must not read PASS from a file whose hosts failed."""
    _edited(tmp_path, lambda d: d.update(verdict="pass"))
    with pytest.raises(UserInputError, match="verdict 'pass', but its hosts give 'fail': the file was changed"):
        read_run(tmp_path)


def test_a_host_verdict_its_checks_do_not_give_is_refused(tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        for h in d["hosts"]:
            h["verdict"] = "pass"
        d["verdict"] = "pass"
    _edited(tmp_path, edit)
    with pytest.raises(UserInputError, match="host ws-2: verdict 'pass', but its checks give 'fail'"):
        read_run(tmp_path)


def test_a_host_without_checks_is_failed(tmp_path: Path) -> None:
    def edit(d: dict) -> None:
        d["hosts"] = [dict(d["hosts"][0], checks=[])]
        d["verdict"] = "pass"
    _edited(tmp_path, edit)
    with pytest.raises(UserInputError, match="host ws-1: verdict 'pass', but its checks give 'fail'"):
        read_run(tmp_path)


def test_a_consistent_edit_still_reads(tmp_path: Path) -> None:
    """The check is of consistency, not of authorship: a report whose failing check was removed with
    its verdicts set to match reads (report.json is not signed)."""
    def edit(d: dict) -> None:
        d["hosts"] = d["hosts"][:1]
        d["verdict"] = "pass"
    _edited(tmp_path, edit)
    assert read_run(tmp_path).verdict == "pass"


def test_report_cli_refuses_an_edited_verdict(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from coderig_deploy.cli import app

    _edited(tmp_path, lambda d: d.update(verdict="pass"))
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert isinstance(result.exception, UserInputError) and "its hosts give 'fail'" in str(result.exception)
    assert "PASS" not in result.stdout


def test_report_cli_prints_past_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from coderig_deploy.cli import app

    write_run(tmp_path, _run())
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--json"])
    assert json.loads(result.stdout)["hosts"][1]["verdict"] == "fail"


def test_leading_provision_check_counts_in_the_verdict() -> None:
    from coderig_deploy.reports import CheckResult

    failed = CheckResult(name="provision", status="fail", reason="ollama: unit failed")
    rep = host_report("ws-1", GOOD, EXP, leading=[failed])
    assert rep.checks[0].name == "provision" and rep.verdict == "fail"
    assert rep.reasons[0] == "provision: ollama: unit failed"
    assert host_report("ws-1", None, EXP).verdict == "fail"  # nothing came back
