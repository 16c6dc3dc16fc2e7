"""`apply --retry-failed`: which hosts are retried, what a run records for it, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.apply import APPLY_SCHEMA, ProfileGroup, host_reports
from coderig_deploy.errors import UserInputError
from coderig_deploy.fleet.retry import Invocation, load_retry, retry_hosts
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import TargetHost, spec_for
from coderig_deploy.results import HostResult
from tests.unit.foundation.test_bad_inputs import assert_bad, cli

STATUSES = {"ws1": "ok", "ws2": "failed", "ws3": "unreachable", "ws4": "timeout", "ws5": "not run",
            "ws6": "ok", "ws7": "canceled", "ws8": "reboot required"}


def _doc(statuses: dict[str, str] = STATUSES, invocation: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema": APPLY_SCHEMA, "hosts": [{"host": h, "status": s} for h, s in statuses.items()],
            "invocation": invocation if invocation is not None else
            Invocation(profile="budget-4070", sandbox=True, forks=7, tags=["ollama"]).model_dump(mode="json")}


def _run_dir(tmp_path: Path, doc: dict[str, Any], verdicts: dict[str, str] | None = None) -> Path:
    (tmp_path / "apply.json").write_text(json.dumps(doc))
    if verdicts is not None:
        hosts = [{"host": h, "verdict": v} for h, v in verdicts.items()]
        (tmp_path / "report.json").write_text(json.dumps({"hosts": hosts}))
    return tmp_path


def test_retried_hosts_are_the_failed_unreachable_timed_out_and_unfinished_ones() -> None:
    chosen = retry_hosts(_doc(), {"ws6": "fail", "ws1": "pass"})
    assert chosen == {"ws2": "failed", "ws3": "unreachable", "ws4": "timeout", "ws6": "benchmark verdict fail",
                      "ws7": "canceled", "ws8": "reboot required"}


def test_a_run_outside_its_limit_and_all_passed_has_nothing_to_retry() -> None:
    assert retry_hosts(_doc({"ws1": "ok", "ws5": "not run"}), {"ws1": "warn"}) == {}


def test_load_retry_keeps_the_runs_options(tmp_path: Path) -> None:
    plan = load_retry(_run_dir(tmp_path, _doc(), {"ws6": "fail"}))
    assert plan.invocation.profile == "budget-4070" and plan.invocation.forks == 7
    assert plan.invocation.tags == ["ollama"] and plan.invocation.sandbox
    assert list(plan.hosts) == ["ws2", "ws3", "ws4", "ws6", "ws7", "ws8"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no apply.json here"),
    ("{not json", "apply.json:1: not valid JSON"),
    (json.dumps({"schema_version": 1, "hosts": []}), "not a coderig apply record"),
    (json.dumps({"schema": APPLY_SCHEMA, "hosts": []}), "does not record the run's options"),
    (json.dumps({"schema": APPLY_SCHEMA, "hosts": [], "invocation": {"profile": "x", "forks": "many"}}),
     "invocation.forks"),
])
def test_a_directory_that_is_not_an_apply_run_is_refused(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "apply.json").write_text(content)
    with pytest.raises(UserInputError, match=message):
        load_retry(tmp_path)
    with pytest.raises(UserInputError, match="not a directory"):
        load_retry(tmp_path / "missing")


def test_cli_nothing_to_retry_exits_0(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    run = _run_dir(tmp_path, _doc({"ws1": "ok"}))
    code, _, err = cli(capsys, monkeypatch, "apply", "--retry-failed", str(run))
    assert code == 0 and "nothing to retry" in err


def test_cli_refuses_a_retry_with_its_own_hosts_or_profile(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    run = _run_dir(tmp_path, _doc())
    assert_bad(*cli(capsys, monkeypatch, "apply", "--retry-failed", str(run), "--profile", "dual-4090", "ws9"),
               "--retry-failed runs the hosts and profile of that run: drop --profile, HOST")
    assert_bad(*cli(capsys, monkeypatch, "apply", "--retry-failed", str(tmp_path / "nope")), "not a directory")
    assert_bad(*cli(capsys, monkeypatch, "apply", "ws1"), "host 'ws1' has no profile")


def test_cli_refuses_a_retried_host_no_longer_in_the_inventory(tmp_path: Path, capsys: Any,
                                                               monkeypatch: Any) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    ws1:\n      ansible_host: 10.0.0.1\n")
    invocation = Invocation(profile="budget-4070", inventory=str(inventory)).model_dump(mode="json")
    run = tmp_path / "run"
    run.mkdir()
    _run_dir(run, _doc({"ws1": "ok", "ws2": "failed"}, invocation))
    assert_bad(*cli(capsys, monkeypatch, "apply", "--retry-failed", str(run)),
               "--retry-failed: ws2 no longer among the run's hosts (have: ws1)")


def test_hosts_outside_the_limit_are_not_in_the_report() -> None:
    profile = load_profile("budget-4070")
    hosts = [TargetHost(name="ws1"), TargetHost(name="ws2")]
    spec = spec_for(profile, hosts)
    results = [HostResult(host="ws1", status="unreachable", unreachable=1, reason="ssh: timed out"),
               HostResult(host="ws2", status="not run")]
    reports = host_reports(results, [ProfileGroup(profile, hosts)], [spec])
    assert [(r.host, r.status, r.verdict, r.failure) for r in reports] == [
        ("ws1", "unreachable", "fail", "ssh: timed out")]
    assert reports[0].profile == "budget-4070" and reports[0].profile_reason == "given on the command line"
