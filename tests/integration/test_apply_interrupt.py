"""Ctrl-C in the middle of `apply`: it stops cleanly (exit 130), and a rerun converges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coderig_deploy.sandbox import HostSpec

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")


def test_interrupted_apply_stops_and_a_rerun_converges(sandbox_lab, tmp_path):
    lab = sandbox_lab([HostSpec(name="ws1", gpu="rtx-4070", count=1)], name="interrupt")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    argv = [CLI, "apply", "--profile", "budget-4070", "--sandbox", "--no-bench", "--runs-dir", str(tmp_path)]
    # Its own session, like a terminal's foreground job: Ctrl-C reaches the whole group.
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # one progress line per host step when not on a terminal
        seen.append(line)
        if " ollama: " in line or time.monotonic() > deadline:
            break
    assert any(" ollama: " in line for line in seen), "".join(seen)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.returncode == 130, proc.stdout.read() if proc.stdout else ""

    # Nothing half-done blocks the next run: it converges and the host passes.
    rerun = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    host = json.loads(rerun.stdout)["hosts"][0]
    assert host["status"] == "ok" and host["changed"] > 0
    version = lab.ssh("ws1", "python3 -c \"import urllib.request;print(urllib.request.urlopen("
                             "'http://127.0.0.1:11434/api/version').read().decode())\"")
    assert json.loads(version.stdout) == {"version": "0.33.3"}

    again = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert again.returncode == 0 and json.loads(again.stdout)["hosts"][0]["changed"] == 0
