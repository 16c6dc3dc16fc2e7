"""Run the air-gap probe and the smoke benchmark on one host over SSH (host key checked).

The benchmark program is copied into a fresh temporary directory on the host and
removed afterwards; it talks to Ollama on the host's own loopback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coderig_deploy.airgap.probe import CONNECT_TIMEOUT_S, PROBE, PUBLIC_ADDRESSES
from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.verify.runner import Target, connect


@dataclass
class HostOutcome:
    probe: dict[str, Any] | None
    bench: dict[str, Any] | None
    error: str | None = None  # why nothing (or only part) came back


def _json(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def probe_host(target: Target, api_url: str, pyz: Path, bench_args: list[str]) -> HostOutcome:
    """The probe document and the benchmark result of one host (error set when a part failed)."""
    try:
        host = connect(target)
    except EnvironmentProblem as exc:
        return HostOutcome(None, None, str(exc))
    try:
        ran = host.run("python3 -c %s %s %s %s", PROBE, api_url, str(CONNECT_TIMEOUT_S),
                       json.dumps([list(a) for a in PUBLIC_ADDRESSES]))
        probe = _json(ran.stdout)
        if probe is None:
            return HostOutcome(None, None, f"the probe failed (exit {ran.rc}): {ran.stderr.strip()[-300:]}")
        return HostOutcome(probe, *_bench(host, pyz, bench_args + ["--url", api_url]))
    finally:
        host.backend.client.close()


def _bench(host: Any, pyz: Path, args: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    made = host.run("mktemp -d /tmp/coderig-validate.XXXXXXXX")
    remote = made.stdout.strip()
    if made.rc != 0 or not remote.startswith("/tmp/coderig-validate."):
        return None, f"cannot create a directory for the benchmark: {made.stderr.strip()}"
    try:
        sftp = host.backend.client.open_sftp()
        try:
            sftp.put(str(pyz), f"{remote}/{pyz.name}")
        finally:
            sftp.close()
        ran = host.run("python3 %s " + " ".join(["%s"] * len(args)), f"{remote}/{pyz.name}", *args)
        result = _json(ran.stdout.strip())
        if result is None:
            return None, f"the benchmark gave no result (exit {ran.rc}): {ran.stderr.strip()[-300:]}"
        return result, None
    finally:
        host.run("rm -rf -- %s", remote)
