"""Event-to-progress folding, on recorded runner events and a few hand-made ones."""

from __future__ import annotations

from typing import Any

from runner_fixtures import load

from coderig_deploy.events import timestamp
from coderig_deploy.progress import Progress


def _event(kind: str, host: str, t: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "created": f"2026-01-01T00:00:{t}+00:00", "event_data": {"host": host, **data}}


def test_final_lines_after_a_whole_recorded_run() -> None:
    events, _, _ = load("bad_inputs")
    progress = Progress(["gpu2", "small", "nosuchhost.invalid", "ghost"])
    for event in events:
        progress.apply(event)
    lines = {line.host: line for line in progress.lines(now=timestamp(events[-1]) or 0.0)}
    assert [line.host for line in progress.lines(0.0)] == ["gpu2", "small", "nosuchhost.invalid", "ghost"]
    assert lines["gpu2"].state == "failed" and lines["gpu2"].role == "preflight"
    assert "RAM: 24105 MiB" in lines["gpu2"].note
    assert lines["small"].state == "unreachable" and "Permission denied" in lines["small"].note
    assert lines["ghost"].state == "unreachable" and lines["ghost"].task == "Gathering Facts"
    assert progress.finished
    # Elapsed freezes when a host ends, whatever the clock says later.
    assert lines["nosuchhost.invalid"].elapsed < lines["gpu2"].elapsed < 30
    later = {line.host: line for line in progress.lines(now=(timestamp(events[-1]) or 0.0) + 1000)}
    assert later["gpu2"].elapsed == lines["gpu2"].elapsed


def test_mid_run_line_shows_the_current_role_task_and_elapsed_time() -> None:
    events, _, _ = load("converged_with_mismatch")
    cut = next(i for i, e in enumerate(events)
               if e["event"] == "runner_on_start" and e["event_data"].get("role") == "models")
    progress = Progress(["gpu2", "small"])
    for event in events[: cut + 1]:
        progress.apply(event)
    now = timestamp(events[cut]) or 0.0
    gpu2 = {line.host: line for line in progress.lines(now)}["gpu2"]
    assert gpu2.state == "running" and gpu2.role == "models"
    assert gpu2.task == events[cut]["event_data"]["task"]
    assert gpu2.tasks_done > 20 and gpu2.changed == 0 and gpu2.elapsed > 1
    assert not progress.finished


def test_retries_show_as_a_note_and_clear_on_the_next_task() -> None:
    progress = Progress(["ws"])
    progress.apply(_event("runner_on_start", "ws", "00", role="ollama", task="Wait until the server answers."))
    progress.apply(_event("runner_retry", "ws", "02", res={"attempts": 2, "retries": 91}))
    assert progress.lines(3 + timestamp(_event("x", "ws", "00"))).pop().note == "retry 2/91"  # type: ignore[operator]
    progress.apply(_event("runner_on_ok", "ws", "03", res={"changed": True}))
    progress.apply(_event("runner_on_start", "ws", "04", role="models", task="List models."))
    (line,) = progress.lines(0.0)
    assert (line.note, line.role, line.tasks_done, line.changed) == ("", "models", 1, 1)


def test_ignored_failures_and_foreign_events_do_not_change_state() -> None:
    progress = Progress(["ws"])
    progress.apply(_event("runner_on_start", "ws", "00", role="smoke", task="Probe."))
    progress.apply(_event("runner_on_failed", "ws", "01", ignore_errors=True, res={"msg": "nope"}))
    progress.apply({"event": "verbose", "created": "2026-01-01T00:00:02+00:00", "event_data": {}})
    progress.apply({"event": "runner_on_ok", "event_data": {"host": "ws", "res": {}}})  # no timestamp
    (line,) = progress.lines(0.0)
    assert line.state == "running" and line.tasks_done == 2 and line.note == ""


def test_hosts_only_the_events_name_are_added_and_waiting_hosts_stay_waiting() -> None:
    progress = Progress(["planned"])
    progress.apply(_event("runner_on_start", "extra", "00", role="preflight", task="Query."))
    progress.apply({"event": "playbook_on_stats", "created": "2026-01-01T00:00:05+00:00", "event_data": {}})
    lines = {line.host: line for line in progress.lines(0.0)}
    assert lines["extra"].state == "done" and lines["extra"].elapsed == 5.0
    assert lines["planned"].state == "waiting" and lines["planned"].elapsed == 0.0


def test_a_rescued_failure_is_followed_by_the_rescue_tasks() -> None:
    progress = Progress(["ws"])
    progress.apply(_event("runner_on_start", "ws", "00", role="nvidia_driver", task="Download."))
    progress.apply(_event("runner_on_failed", "ws", "01", res={"msg": "no network"}))
    assert progress.lines(0.0)[0].state == "failed"
    progress.apply(_event("runner_on_start", "ws", "02", role="nvidia_driver", task="Explain."))
    progress.apply(_event("runner_on_failed", "ws", "03", res={"msg": "needs local-repo"}))
    (line,) = progress.lines(100.0)
    assert (line.state, line.task, line.note, line.elapsed) == ("failed", "Explain.", "needs local-repo", 3.0)


def test_a_polled_transfer_shows_its_bytes() -> None:
    progress = Progress(["ws"])
    progress.apply(_event("runner_on_start", "ws", "00", role="models", task="Wait for the pull to finish."))
    doc = '{"status": "pulling 4bd6cbf2d094", "completed": 1288490188, "total": 42949672960, "done": false}'
    progress.apply(_event("runner_retry", "ws", "05", res={"attempts": 3, "retries": 3600, "stdout": doc}))
    assert progress.lines(0.0)[0].note == "1.2/40.0 GiB"
    progress.apply(_event("runner_retry", "ws", "07", res={"attempts": 4, "retries": 3600, "stdout": "not json"}))
    assert progress.lines(0.0)[0].note == "retry 4/3600"
