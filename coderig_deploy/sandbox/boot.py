"""Wait for a booted host to reach `running`, and explain it when it does not."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING

from coderig_deploy.sandbox import hosts
from coderig_deploy.sandbox.state import HostState

if TYPE_CHECKING:
    from coderig_deploy.sandbox.lab import Lab


def wait_running(lab: Lab, host: HostState, timeout: float) -> tuple[str, float]:
    """Poll over SSH until `systemctl is-system-running --wait` answers; (state, seconds)."""
    started = time.monotonic()
    deadline = started + timeout
    answer = "unreachable"
    while time.monotonic() < deadline:
        if host.pid and not hosts.is_alive(host.pid):
            return "failed", time.monotonic() - started
        try:
            proc = lab.ssh(host, "systemctl is-system-running --wait",
                           timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            break
        answer = proc.stdout.strip() or "unreachable"
        if answer in ("running", "degraded", "maintenance", "stopping"):
            break
        time.sleep(0.1)
    status = "running" if answer == "running" else "failed"
    return status, time.monotonic() - started


def failure_report(lab: Lab, names: list[str]) -> str:
    """One paragraph per failed host: failed units, or the console log's tail."""
    parts = []
    for name in names:
        host = lab.host(name)
        detail = ""
        try:
            proc = lab.ssh(host, "systemctl --failed --no-legend --plain", timeout=10)
            detail = proc.stdout.strip() and f"failed units: {proc.stdout.strip()}"
        except subprocess.TimeoutExpired:
            pass
        if not detail:
            log = hosts.HostPaths(lab.home, name).log
            tail = log.read_text(errors="replace").splitlines()[-8:] if log.is_file() else []
            detail = "console: " + " | ".join(tail)
        parts.append(f"sandbox host {name} ({host.ip}) did not reach `running`: {detail}")
    return "\n".join(parts) + "\nInspect it with `sandbox list`; remove it with `sandbox down`."
