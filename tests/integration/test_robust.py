"""One apply at a time per host, and the reboot guard, on a real sandbox host.

- Two applies started together at one host: one provisions it, the other fails with the
  lock message naming the first, and none of its roles ran (nothing interleaved).
- The driver role's "is this the controller?" guard compares machine ids, not names: the
  host passes as a target with its own id and is refused once it carries the controller's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.render import shipped_dir
from coderig_deploy.sandbox import HostSpec, Lab

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
ROLES = shipped_dir("playbooks") / "roles"
PROVISIONING_ROLES = {"preflight", "nvidia_driver", "ollama", "models", "smoke"}


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    return sandbox_lab([HostSpec(name="ws1", gpu="rtx-4070", count=1)], name="robust")


GUARD_PLAY = """---
- name: Ask the driver role's guard whether the host is the controller
  hosts: sandbox
  gather_facts: false
  tasks:
    - name: Run the guard
      ansible.builtin.import_role:
        name: nvidia_driver
        tasks_from: controller_guard
    - name: Compare with what the test expects
      ansible.builtin.assert:
        that: nvidia_driver_is_controller | bool == expect | bool
"""


def _guard(lab: Lab, play: Path, expect: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROLES), "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab.inventory_path), str(play),
                           "-e", json.dumps({"expect": expect})],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_reboot_guard_compares_machine_ids_not_names(lab: Lab, tmp_path: Path) -> None:
    play = tmp_path / "guard.yml"
    play.write_text(GUARD_PLAY)
    controller = Path("/etc/machine-id").read_text().strip()
    own = lab.ssh("ws1", "cat /etc/machine-id").stdout.strip()
    assert len(own) == 32 and own != controller
    ran = _guard(lab, play, expect=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    # The host now carries the controller's identity, as the controller reached by any name
    # (root@127.0.1.1, its hostname, a LAN address) would: the guard must say "controller".
    lab.ssh("ws1", f"cp /etc/machine-id /root/machine-id.saved && echo {controller} > /etc/machine-id")
    try:
        assert lab.ssh("ws1", "cat /etc/machine-id").stdout.strip() == controller
        ran = _guard(lab, play, expect=True)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert controller not in ran.stdout  # the ids stay out of the output (no_log)
    finally:
        lab.ssh("ws1", "cat /root/machine-id.saved > /etc/machine-id")


def _role_events(run_dir: Path) -> list[tuple[float, str]]:
    """(time, role) of every task start of a run, from runner's stored events."""
    found = []
    for path in (run_dir / "artifacts" / "apply" / "job_events").glob("*.json"):
        event = json.loads(path.read_text())
        if event.get("event") == "runner_on_start":
            when = datetime.fromisoformat(event["created"]).timestamp()
            found.append((when, str(event["event_data"].get("role") or "")))
    return sorted(found)


def _provisioning_span(run_dir: Path) -> tuple[float, float] | None:
    times = [t for t, role in _role_events(run_dir) if role in PROVISIONING_ROLES]
    return (min(times), max(times)) if times else None


def test_two_applies_to_one_host_do_not_interleave(lab: Lab, tmp_path: Path) -> None:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}

    def start(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(BIN / "coderig-deploy"), "apply", "--profile", "budget-4070", "--sandbox",
                                 "--no-bench", "--runs-dir", str(tmp_path / name), "--json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = {"a": start("a")}
    time.sleep(1)
    procs["b"] = start("b")
    out = {name: proc.communicate(timeout=1200) for name, proc in procs.items()}
    docs = {name: json.loads(stdout) for name, (stdout, _) in out.items()}
    codes = {name: proc.returncode for name, proc in procs.items()}
    spans = {name: _provisioning_span(Path(docs[name]["run_dir"])) for name in procs}
    first = min((n for n in spans if spans[n]), key=lambda n: spans[n][0])  # type: ignore[index]
    other = "b" if first == "a" else "a"
    assert codes[first] == 0 and docs[first]["hosts"][0]["status"] == "ok", out
    assert docs[first]["hosts"][0]["changed"] > 0
    if codes[other] == 0:  # the first finished within host_lock_wait: the second waited for it
        assert spans[other] is not None and spans[other][0] > spans[first][1], spans  # type: ignore[index]
    else:  # the usual case on a busy machine: the second gave up after host_lock_wait
        host = docs[other]["hosts"][0]
        assert codes[other] == 1 and host["status"] == "failed", out
        assert host["failed_task"] == "Ensure this apply holds the host lock."
        assert host["reason"].startswith(f"host ws1 is being provisioned by another apply "
                                         f"(run {Path(docs[first]['run_dir']).name} from "), host["reason"]
        assert "waited 60 s" in host["reason"]
        assert spans[other] is None  # none of its provisioning roles started a task on the host
    # The lock was released at the end: no holder is left on the host.
    assert lab.ssh("ws1", "test -e /run/coderig/apply.lock.owner.json && echo held || echo free"
                   ).stdout.strip() == "free"


def test_a_run_past_its_timeout_ends_as_timeout_and_the_next_run_is_not_blocked(lab: Lab, tmp_path: Path) -> None:
    """--timeout stops the run while it holds the host lock; the next apply from this
    controller sees the lock's coderig process is gone and takes over at once (else it
    would wait 60 s and fail: the stopped run's lease lasts its timeout + 5 min)."""
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    argv = [str(BIN / "coderig-deploy"), "apply", "--profile", "budget-4070", "--sandbox", "--no-bench",
            "--runs-dir", str(tmp_path), "--json"]
    # The run must still be going at 20 s on any machine: preflight's GPU query, the first
    # task after the lock, stalls for 120 s (a hung driver), then the real tool answers.
    lab.ssh("ws1", "mv /usr/bin/nvidia-smi /usr/bin/nvidia-smi.real && printf '%s\\n' '#!/bin/sh' "
                   "'sleep 120' 'exec /usr/bin/nvidia-smi.real \"$@\"' > /usr/bin/nvidia-smi && chmod 755 /usr/bin/nvidia-smi")
    try:
        stopped = subprocess.run([*argv, "--timeout", "20"], env=env, capture_output=True, text=True, timeout=600,
                                 check=False)
    finally:
        lab.ssh("ws1", "mv -f /usr/bin/nvidia-smi.real /usr/bin/nvidia-smi")
    doc = json.loads(stopped.stdout)
    assert stopped.returncode == 1 and doc["status"] == "timeout" and doc["timeout"] == 20, stopped.stderr
    assert [(h["host"], h["status"]) for h in doc["hosts"]] == [("ws1", "timeout")]
    assert doc["hosts"][0]["reason"] == "the run's time limit (20 s) ended before this host finished"
    held = lab.ssh("ws1", "cat /run/coderig/apply.lock.owner.json").stdout
    assert json.loads(held)["run"] == Path(doc["run_dir"]).name  # stopped while holding the lock

    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    host = json.loads(rerun.stdout)["hosts"][0]
    assert rerun.returncode == 0 and host["status"] == "ok", host


# On the host: an Ollama stand-in that lists no models and, asked to pull, answers one
# line and then stalls, like a pull over a link that hangs.
STALLING_OLLAMA = """
import http.server, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"models": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "pulling manifest"}\\n')
        self.wfile.flush()
        time.sleep(600)
http.server.ThreadingHTTPServer(("127.0.0.1", 11999), Handler).serve_forever()
"""


def test_a_pull_past_its_time_limit_fails_the_host(lab: Lab, tmp_path: Path) -> None:
    """The rendered project run by plain ansible-playbook: the models role's pull gives up at
    models_pull_timeout and the role fails the host instead of passing it. (A helper killed
    without a final line, by the async backstop, is tests/unit/test_pull_helper.py's case.)"""
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home), "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_NOCOLOR": "1"}
    project = tmp_path / "rig"
    rendered = subprocess.run([str(BIN / "coderig-deploy"), "render", "--profile", "budget-4070", "--sandbox",
                               "-o", str(project)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert rendered.returncode == 0, rendered.stderr
    lab.ssh("ws1", "cat > /root/stall.py", stdin=STALLING_OLLAMA)
    lab.ssh("ws1", "setsid python3 /root/stall.py </dev/null >/dev/null 2>&1 & echo $! > /root/stall.pid")
    try:
        ran = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventory.yml", "site.yml", "--tags", "models",
                              "-e", json.dumps({"models_api_url": "http://127.0.0.1:11999",
                                                "models_pull_timeout": 6, "coderig_run_id": "killed-pull"})],
                             cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
        seen = lab.ssh("ws1", "ps -eo pid,ppid,stat,lstart,cmd; cat ~/.ansible_async/*").stdout
    finally:
        lab.ssh("ws1", "kill $(cat /root/stall.pid); rm -f /root/stall.py /root/stall.pid")
    assert ran.returncode != 0, ran.stdout
    assert "Ensure the pull succeeded." in ran.stdout
    assert "the pull did not finish within 6 s (models_pull_timeout)" in ran.stdout, ran.stdout[-3000:] + seen
    assert "Release the host lock" in ran.stdout  # released on the failure too
    assert lab.ssh("ws1", "test -e /run/coderig/apply.lock.owner.json && echo held || echo free"
                   ).stdout.strip() == "free"
