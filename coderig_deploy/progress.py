"""Live progress from runner events: one line per host (pure; the CLI draws it).

    progress = Progress(["ws1", "ws2"])
    progress.apply(event)            # for every runner event, in order
    progress.lines(now=time.time())  # -> [ProgressLine(host, state, role, task, elapsed, ...)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coderig_deploy import events as ev

WAITING, RUNNING, DONE, FAILED, UNREACHABLE = "waiting", "running", "done", "failed", "unreachable"


@dataclass
class HostProgress:
    host: str
    state: str = WAITING
    role: str = ""
    task: str = ""
    started: float | None = None
    ended: float | None = None
    tasks_done: int = 0
    changed: int = 0
    retries: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ProgressLine:
    host: str
    state: str
    role: str
    task: str
    elapsed: float
    tasks_done: int
    changed: int
    note: str


def transfer_note(res: dict[str, Any]) -> str:
    """"1.2/40.0 GiB" when a polled task printed a progress document (the models role's
    pull helper: {"completed": bytes, "total": bytes, "status": ...}), else ""."""
    try:
        doc = json.loads(str(res.get("stdout") or ""))
    except ValueError:
        return ""
    if not isinstance(doc, dict) or not doc.get("total"):
        return ""
    gib = 1 << 30
    return f"{doc.get('completed', 0) / gib:.1f}/{doc['total'] / gib:.1f} GiB"


class Progress:
    """Per-host state folded from events."""

    def __init__(self, hosts: list[str]) -> None:
        self.hosts: dict[str, HostProgress] = {h: HostProgress(h) for h in hosts}
        self.finished = False

    def _host(self, name: str) -> HostProgress:
        return self.hosts.setdefault(name, HostProgress(name))

    def apply(self, event: ev.Event) -> None:
        kind = ev.kind(event)
        if kind == ev.STATS:
            self._finish(ev.timestamp(event))
            return
        name = ev.host(event)
        if name is None or kind not in ev.HOST_EVENTS:
            return
        host = self._host(name)
        when = ev.timestamp(event)
        if host.started is None:
            host.started = when
        if host.state == UNREACHABLE:
            return
        data = ev.data(event)
        if kind == ev.TASK_START:  # after a failure too: a rescue block runs on
            host.state, host.retries, host.reason, host.ended = RUNNING, "", "", None
            host.role, host.task = str(data.get("role") or ""), str(data.get("task") or "")
        elif kind == ev.RETRY:
            res = ev.result(event)
            host.retries = transfer_note(res) or f"retry {res.get('attempts', '?')}/{res.get('retries', '?')}"
        elif kind in (ev.OK, ev.SKIPPED) or (kind == ev.FAILED and not ev.is_real_failure(event)):
            host.tasks_done += 1
            host.changed += 1 if ev.result(event).get("changed") else 0
        elif kind == ev.FAILED:
            host.state, host.reason, host.ended = FAILED, ev.failure_reason(event), when
        elif kind == ev.UNREACHABLE:
            host.state, host.reason, host.ended = UNREACHABLE, ev.failure_reason(event), when

    def _finish(self, when: float | None) -> None:
        self.finished = True
        for host in self.hosts.values():
            if host.state in (WAITING, RUNNING):
                host.state = DONE if host.started is not None else WAITING
                host.ended = when

    def lines(self, now: float) -> list[ProgressLine]:
        """One line per host, in the order the hosts were given."""
        out = []
        for host in self.hosts.values():
            end = host.ended if host.ended is not None else now
            elapsed = max(0.0, end - host.started) if host.started is not None else 0.0
            note = host.reason or host.retries
            out.append(ProgressLine(host.host, host.state, host.role, host.task, elapsed,
                                    host.tasks_done, host.changed, note))
        return out
