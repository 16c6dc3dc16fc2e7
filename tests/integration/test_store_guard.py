"""The ollama role will not take over a model store it did not create (issue 8, finding 2).

A profile may point `ollama.models_dir` at a dedicated directory such as /srv/models.
When that directory already exists on the host, holds files and belongs to someone
else, `apply` must fail the host in the ollama role before that role changes
anything: no Ollama installed, no service user, the directory and its file untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coderig_deploy.sandbox import HostSpec

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")


def test_a_foreign_non_empty_store_is_refused_before_any_change(sandbox_lab, tmp_path: Path) -> None:
    lab = sandbox_lab([HostSpec(name="ws1", gpu="rtx-4070", count=1)], name="store-guard")
    setup = lab.ssh("ws1", "mkdir -p /srv/models && echo keep > /srv/models/notes.txt && chmod 0700 /srv/models")
    assert setup.returncode == 0, setup.stderr
    (tmp_path / "store.yaml").write_text(
        "extends: budget-4070\ndescription: budget build, models on /srv\nollama: {models_dir: /srv/models}\n")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run(
        [CLI, "apply", "--json", "--no-bench", "--profile", str(tmp_path / "store.yaml"), "--sandbox",
         "--runs-dir", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.stdout.strip().startswith("{"), proc.stdout + proc.stderr
    host = json.loads(proc.stdout)["hosts"][0]
    assert proc.returncode == 1
    assert host["status"] == "failed" and host["failed_role"] == "ollama", host
    assert "/srv/models already holds 1 entries and belongs to root, not ollama" in host["reason"]

    probe = lab.ssh("ws1", "id ollama; test -e /usr/local/bin/ollama && echo binary; "
                           "test -e /etc/systemd/system/ollama.service && echo unit; "
                           "stat -c '%U %a' /srv/models; cat /srv/models/notes.txt")
    assert "no such user" in probe.stderr
    assert probe.stdout.split("\n")[:2] == ["root 700", "keep"], probe.stdout

    # Emptied, the same directory is taken over and the run completes with the model in it.
    assert lab.ssh("ws1", "rm /srv/models/notes.txt").returncode == 0
    proc = subprocess.run(
        [CLI, "apply", "--json", "--no-bench", "--profile", str(tmp_path / "store.yaml"), "--sandbox",
         "--runs-dir", str(tmp_path / "runs")],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    host = json.loads(proc.stdout)["hosts"][0]
    assert proc.returncode == 0 and host["status"] == "ok", host
    probe = lab.ssh("ws1", "stat -c '%U' /srv/models; ls /srv/models")
    assert probe.stdout.split() == ["ollama", "blobs", "manifests"], probe.stdout
