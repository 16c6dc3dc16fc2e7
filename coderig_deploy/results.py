"""Per-host results of a run, from runner's stats and events (pure).

A host's status: "ok" (no task failed), "failed" (a task failed: the reason is
its message, and the role and task are named), "unreachable", "reboot required"
(the driver role stopped the host for a reboot), "canceled" (the run was
interrupted before the host finished), "timeout" (the run's time limit, `apply
--timeout`, ended it before the host finished) or "not run" (no event for the host, e.g.
excluded by --limit). Summary facts the roles set (`preflight_summary`,
`ollama_summary`, ...) come along for the report.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from coderig_deploy import events as ev

Status = Literal["ok", "failed", "unreachable", "reboot required", "canceled", "timeout", "not run"]
FACT_KEYS = ("preflight_summary", "nvidia_driver_summary", "ollama_summary", "models_summary",
             "smoke_summary", "smoke_benchmark_result")
REBOOT_PREFIX = "reboot required:"


class HostResult(BaseModel):
    host: str
    status: Status
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    seconds: float = Field(0.0, description="First to last event of this host")
    failed_role: str | None = None
    failed_task: str | None = None
    reason: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "ok"


def host_results(hosts: list[str], stats: dict[str, dict[str, int]], events: list[ev.Event],
                 canceled: bool = False, timeout: int | None = None) -> list[HostResult]:
    """One result per host in `hosts` (plus any host only the events name), in that order.

    `timeout`: the run was stopped at this many seconds; unfinished hosts get status "timeout"."""
    names = list(dict.fromkeys([*hosts, *(n for e in events if (n := ev.host(e)))]))
    by_host: dict[str, list[ev.Event]] = {name: [] for name in names}
    for event in events:
        name = ev.host(event)
        if name in by_host:
            by_host[name].append(event)
    return [_one(name, stats.get(name, {}), by_host[name], canceled, timeout) for name in names]


def _one(host: str, counts: dict[str, int], events: list[ev.Event], canceled: bool,
         timeout: int | None) -> HostResult:
    times = [t for e in events if (t := ev.timestamp(e)) is not None]
    counts = counts or _counted(events)  # no stats after a canceled run
    result = HostResult(
        host=host, status="ok",
        ok=counts.get("ok", 0), changed=counts.get("changed", 0), failed=counts.get("failures", 0),
        unreachable=counts.get("dark", 0), skipped=counts.get("skipped", 0),
        seconds=round(max(times) - min(times), 2) if times else 0.0,
        facts=_facts(events),
    )
    # The last failure is the one that stopped the host: an earlier one was rescued.
    failure = next((e for e in reversed(events) if ev.is_real_failure(e) or ev.kind(e) == ev.UNREACHABLE), None)
    if failure is not None:
        data = ev.data(failure)
        result.reason = ev.failure_reason(failure)
        result.failed_role = str(data.get("role") or "") or None
        result.failed_task = str(data.get("task") or "") or None
        result.status = _failure_status(failure, result.reason)
    elif timeout is not None:
        result.status = "timeout"
        result.reason = f"the run's time limit ({timeout} s) ended before this host finished"
    elif not events:
        result.status = "canceled" if canceled else "not run"
    elif canceled:
        result.status, result.reason = "canceled", "the run was interrupted before this host finished"
    return result


def _counted(events: list[ev.Event]) -> dict[str, int]:
    """Stats rebuilt from the events, for a run that ended before its recap."""
    kinds = [ev.kind(e) for e in events]
    failed = [e for e in events if ev.is_real_failure(e)]
    return {"ok": kinds.count(ev.OK), "skipped": kinds.count(ev.SKIPPED), "failures": min(len(failed), 1),
            "dark": min(kinds.count(ev.UNREACHABLE), 1),
            "changed": sum(1 for e in events if ev.kind(e) == ev.OK and ev.result(e).get("changed"))}


def _failure_status(event: ev.Event, reason: str) -> Status:
    if ev.kind(event) == ev.UNREACHABLE:
        return "unreachable"
    if reason.startswith(REBOOT_PREFIX):
        return "reboot required"
    return "failed"


def _facts(events: list[ev.Event]) -> dict[str, Any]:
    """The last value of each summary fact the roles set for this host."""
    facts: dict[str, Any] = {}
    for event in events:
        if ev.kind(event) != ev.OK:
            continue
        set_facts = ev.result(event).get("ansible_facts")
        if isinstance(set_facts, dict):
            facts.update({k: v for k, v in set_facts.items() if k in FACT_KEYS})
    return facts


def exit_code(results: list[HostResult]) -> int:
    """0 when every host that ran passed, 1 otherwise (DESIGN.md exit codes)."""
    ran = [r for r in results if r.status != "not run"]
    return 0 if ran and all(r.passed for r in ran) else 1
