"""Per-host results from recorded runner stats and events (fixtures of real runs)."""

from __future__ import annotations

import pytest
from runner_fixtures import CASES, load

from coderig_deploy.results import exit_code, host_results


@pytest.mark.parametrize("case", CASES)
def test_each_host_gets_its_status_counts_and_reason(case: str) -> None:
    events, stats, expected = load(case)
    results = {r.host: r for r in host_results(sorted(expected["hosts"]), stats, events)}
    assert set(results) == set(expected["hosts"])
    for host, want in expected["hosts"].items():
        got = results[host]
        assert got.status == want["status"], host
        assert (got.failed, got.unreachable, got.changed) == (want["failed"], want["unreachable"], want["changed"]), host
        assert got.failed_role == want["failed_role"], host
        if want["reason_contains"] is None:
            assert got.reason is None, host
        else:
            assert want["reason_contains"] in (got.reason or ""), host
            assert "\n" not in got.reason and not got.reason.startswith("Task failed"), host
    assert exit_code(list(results.values())) == expected["exit_code"]


def test_host_time_spans_its_own_events() -> None:
    events, stats, _ = load("converged_with_mismatch")
    results = {r.host: r for r in host_results(["gpu2", "small"], stats, events)}
    # small stops in preflight; gpu2 goes on through every role.
    assert 0 < results["small"].seconds < results["gpu2"].seconds


def test_summary_facts_come_along_for_the_report() -> None:
    events, stats, _ = load("converged_with_mismatch")
    gpu2 = {r.host: r for r in host_results(["gpu2", "small"], stats, events)}["gpu2"]
    summary = gpu2.facts["preflight_summary"]
    assert summary["problems"] == [] and summary["gpu_source"] == "nvidia-smi"
    assert [g["name"] for g in summary["gpus"]] == ["NVIDIA GeForce RTX 4090"] * 2
    assert gpu2.facts["ollama_summary"]["version"] == "0.33.0"
    assert gpu2.facts["models_summary"]["variant"] == "coderig/llama3.1-70b:32k"


def test_a_host_without_events_did_not_run_and_does_not_fail_the_run() -> None:
    events, stats, _ = load("converged_with_mismatch")
    ok_only = [e for e in events if e["event_data"].get("host") != "small"]
    results = {r.host: r for r in host_results(["gpu2", "excluded"], {"gpu2": stats["gpu2"]}, ok_only)}
    assert results["excluded"].status == "not run"
    assert exit_code(list(results.values())) == 0


def test_an_interrupted_run_marks_unfinished_hosts_canceled() -> None:
    events, _, _ = load("converged_with_mismatch")
    cut = next(i for i, e in enumerate(events) if e["event_data"].get("role") == "ollama")
    results = {r.host: r for r in host_results(["gpu2", "small", "later"], {}, events[:cut], canceled=True)}
    assert results["gpu2"].status == "canceled" and results["gpu2"].ok > 10 and results["gpu2"].failed == 0
    assert results["small"].status == "failed" and results["small"].failed == 1  # failed before the cut
    assert results["later"].status == "canceled"
    assert exit_code(list(results.values())) == 1


def test_ignored_failures_do_not_fail_a_host() -> None:
    events, stats, _ = load("converged_with_mismatch")
    ignored = {"event": "runner_on_failed", "created": events[-2]["created"],
               "event_data": {"host": "gpu2", "task": "probe", "role": "smoke", "ignore_errors": True,
                              "res": {"msg": "ignored"}}}
    gpu2 = {r.host: r for r in host_results(["gpu2"], stats, [*events[:-1], ignored, events[-1]])}["gpu2"]
    assert gpu2.status == "ok" and gpu2.reason is None


def test_a_reboot_request_is_its_own_status() -> None:
    event = {"event": "runner_on_failed", "created": "2026-01-01T00:00:00+00:00",
             "event_data": {"host": "ws", "task": "Ensure the host is not left waiting for a reboot.",
                            "role": "nvidia_driver",
                            "res": {"msg": "reboot required: driver branch 570 is installed but not loaded"}}}
    (result,) = host_results(["ws"], {"ws": {"failures": 1}}, [event])
    assert result.status == "reboot required" and result.failed_role == "nvidia_driver"


def test_the_failure_that_stopped_the_host_is_the_reason_not_a_rescued_one() -> None:
    def failed(t: str, task: str, msg: str) -> dict[str, object]:
        return {"event": "runner_on_failed", "created": f"2026-01-01T00:00:0{t}+00:00",
                "event_data": {"host": "ws", "task": task, "role": "nvidia_driver", "res": {"msg": msg}}}

    events = [failed("1", "Download.", "Request failed"), failed("2", "Explain.", "use driver source local-repo")]
    (result,) = host_results(["ws"], {"ws": {"failures": 1, "rescued": 1}}, events)
    assert (result.failed_task, result.reason) == ("Explain.", "use driver source local-repo")
