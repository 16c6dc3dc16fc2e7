"""Simulated Secure Boot on a sandbox host (hardware seam): a `mokutil` stand-in that
reports "SecureBoot enabled" and records a staged MOK enrollment, so preflight's
refusal and the driver role's `sign` path run on a booted host."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

MOKUTIL = Path(__file__).resolve().parent / "gpu" / "mokutil.sh"
STAGED = "/var/lib/coderig-sim/mok/new.der"


class _Ssh(Protocol):
    def ssh(self, host: str, command: str, timeout: float = 60.0, stdin: str | None = None) -> object: ...


def enable(lab: _Ssh, host: str) -> None:
    """Turn Secure Boot "on" for `host`: install the stand-in as /usr/local/sbin/mokutil."""
    lab.ssh(host, "install -d /usr/local/sbin && cat > /usr/local/sbin/mokutil && chmod 0755 /usr/local/sbin/mokutil",
            stdin=MOKUTIL.read_text())
