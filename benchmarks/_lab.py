"""What the lab benchmarks share: a throwaway sandbox lab and one `apply` through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coderig_deploy.sandbox import HostSpec, Lab

CLI = str(Path(sys.executable).parent / "coderig-deploy")


def labs_root() -> Path:
    """Where throwaway labs live (the integration tests' CODERIG_TEST_LABS); needs root."""
    if os.geteuid() != 0:
        raise SystemExit("the sandbox boots hosts with systemd-nspawn: run as root")
    root = Path(os.environ.get("CODERIG_TEST_LABS", "/var/lib/coderig/test-labs"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def throwaway_lab(specs: list[HostSpec], prefix: str, timeout: float = 300.0) -> Iterator[tuple[Lab, float]]:
    """Boot `specs` in a fresh lab; yield it with its boot seconds; tear it down after."""
    lab = Lab(Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=labs_root())))
    try:
        started = time.monotonic()
        lab.up(specs, prefix=prefix[:2], timeout=timeout)
        yield lab, time.monotonic() - started
    finally:
        lab.down()
        shutil.rmtree(lab.home, ignore_errors=True)


def apply(lab: Lab, *args: str) -> tuple[int, dict[str, Any], float]:
    """`coderig-deploy apply --sandbox --json ARGS` on the lab: (exit code, document, wall seconds)."""
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    started = time.monotonic()
    proc = subprocess.run([CLI, "apply", "--sandbox", "--json", "--runs-dir", str(lab.home / "runs"), *args],
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if not proc.stdout.strip().startswith("{"):
        raise SystemExit(f"apply failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.returncode, json.loads(proc.stdout), seconds
