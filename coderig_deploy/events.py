"""Reading ansible-runner events: the few fields coderig relies on, in one place.

An event is runner's dict: {"event": "runner_on_ok", "created": ISO-8601 UTC,
"event_data": {"host", "task", "role", "res", "ignore_errors", ...}}.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

Event = dict[str, Any]

TASK_START = "runner_on_start"
OK = "runner_on_ok"
SKIPPED = "runner_on_skipped"
FAILED = "runner_on_failed"
UNREACHABLE = "runner_on_unreachable"
RETRY = "runner_retry"
STATS = "playbook_on_stats"
HOST_EVENTS = {TASK_START, OK, SKIPPED, FAILED, UNREACHABLE, RETRY}


def kind(event: Event) -> str:
    return str(event.get("event", ""))


def data(event: Event) -> dict[str, Any]:
    value = event.get("event_data")
    return value if isinstance(value, dict) else {}


def host(event: Event) -> str | None:
    value = data(event).get("host")
    return str(value) if value else None


def result(event: Event) -> dict[str, Any]:
    value = data(event).get("res")
    return value if isinstance(value, dict) else {}


def timestamp(event: Event) -> float | None:
    """Seconds since the epoch from the event's `created` field."""
    created = event.get("created")
    if not isinstance(created, str):
        return None
    try:
        return datetime.fromisoformat(created).timestamp()
    except ValueError:
        return None


def is_real_failure(event: Event) -> bool:
    """A failed task that counts (not one under ignore_errors)."""
    return kind(event) == FAILED and not data(event).get("ignore_errors")


def one_line(text: str, limit: int = 400) -> str:
    """Collapse whitespace and cut `text` to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def failure_reason(event: Event) -> str:
    """The most useful single line of a failed or unreachable task's result."""
    res = result(event)
    msg = one_line(res.get("msg") or "").removeprefix("Task failed: ")
    details = [one_line(res.get(k) or "", 200) for k in ("stderr", "stdout") if res.get(k)]
    if msg in ("", "non-zero return code") and details:
        return f"{msg or 'failed'}: {details[0]}" if msg else details[0]
    if not msg and res.get("results"):  # a loop: the first failed item speaks
        items = [r for r in res["results"] if isinstance(r, dict) and r.get("failed")]
        if items:
            return one_line(items[0].get("msg") or "a loop item failed")
    return msg or "failed (no message)"
