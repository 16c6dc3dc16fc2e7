"""Stop controller-side processes recorded in a lab's state, safely after a crash."""

from __future__ import annotations

import os
import signal
import time


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def is_same_process(pid: int, started: int | None) -> bool:
    """True if `pid` still names the process that was recorded (not a reused PID)."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)  # a session leader: its helpers go too
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def terminate(pid: int, started: int | None, timeout: float = 5.0) -> None:
    """SIGTERM the recorded process, then SIGKILL it if it lingers."""
    if not is_same_process(pid, started):
        return
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _gone(pid):
        _signal(pid, signal.SIGKILL)
