"""The host lock (roles/host_lock): its helper, and the role run by real ansible-playbook on this machine.

The sandbox integration test (tests/integration/test_robust.py) runs two applies at one host;
here the same role runs against the controller itself (connection local), with the lock file
in a temporary directory.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy import runner
from coderig_deploy.render import shipped_dir
from coderig_deploy.results import host_results

ROLE = shipped_dir("playbooks") / "roles" / "host_lock"
HELPER = ROLE / "files" / "coderig-lock.py"


def _lock(*args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run([sys.executable, str(HELPER), *args], capture_output=True, text=True, timeout=60,
                          check=False)
    return proc.returncode, json.loads(proc.stdout)


def _alive(token: str) -> bool:
    """The holder process runs (a zombie waiting for its reaper does not hold the lock)."""
    try:
        stat = Path(f"/proc/{token.split(':')[0]}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def lock(tmp_path: Path) -> Any:
    path = str(tmp_path / "run" / "apply.lock")
    holders: list[str] = []

    def acquire(*extra: str) -> tuple[int, dict[str, Any]]:
        code, doc = _lock("acquire", "--path", path, "--run", "r1", "--controller", "ctl", "--controller-pid", "42",
                          *extra)
        if doc.get("acquired"):
            holders.append(doc["holder"])
        return code, doc

    yield path, acquire
    for token in holders:
        _lock("release", "--path", path, "--holder", token)


def test_the_lock_is_held_until_released_and_names_its_owner(lock: Any) -> None:
    path, acquire = lock
    code, first = acquire()
    assert code == 0 and first["acquired"] and _alive(first["holder"])
    started = time.monotonic()
    code, second = acquire("--wait", "2")
    assert code == 1 and second["acquired"] is False and time.monotonic() - started >= 2
    assert {k: second["owner"][k] for k in ("run", "controller", "controller_pid", "holder")} == {
        "run": "r1", "controller": "ctl", "controller_pid": 42, "holder": first["holder"]}
    assert _lock("status", "--path", path) == (0, {"held": True, "owner": first["owner"]})
    assert _lock("release", "--path", path, "--holder", first["holder"]) == (0, {"released": True})
    assert not _alive(first["holder"]) and not Path(path + ".owner.json").exists()
    assert _lock("status", "--path", path) == (0, {"held": False, "owner": {}})
    assert acquire()[0] == 0


def test_a_stale_holder_can_be_broken_and_a_lease_ends_by_itself(lock: Any) -> None:
    path, acquire = lock
    _, stale = acquire()
    code, doc = acquire("--break", stale["holder"], "--wait", "5")
    assert code == 0 and doc["holder"] != stale["holder"] and not _alive(stale["holder"])
    _lock("release", "--path", path, "--holder", doc["holder"])
    _, short = acquire("--lease", "2")
    time.sleep(3)
    assert not _alive(short["holder"]) and acquire()[0] == 0


def test_release_never_stops_another_runs_holder(lock: Any) -> None:
    path, acquire = lock
    _, held = acquire()
    pid = held["holder"].split(":")[0]
    assert _lock("release", "--path", path, "--holder", f"{pid}:1") == (0, {"released": True})  # wrong start time
    assert _alive(held["holder"]) and _lock("status", "--path", path)[1]["held"] is True


# The role itself, in a play shaped like site.yml: lock, work, release in `always`.
SITE = """---
- name: Lock, work, release
  hosts: all
  gather_facts: false
  tasks:
    - name: Work while holding the lock
      block:
        - name: Take the host lock
          ansible.builtin.import_role:
            name: host_lock
        - name: Fail when asked to
          ansible.builtin.fail:
            msg: the work failed
          when: fail_work | default(false)
        - name: Hold on for a while when asked to
          ansible.builtin.command: sleep {{ hold_seconds | default(0) }}
          changed_when: false
      always:
        - name: Release the host lock
          ansible.builtin.import_role:
            name: host_lock
            tasks_from: release
"""


def _play(tmp_path: Path, name: str, **extravars: Any) -> runner.RunOutcome:
    files = {"site.yml": SITE.encode(),
             "ansible.cfg": b"[ssh_connection]\nssh_args = -o StrictHostKeyChecking=yes\n",
             "inventory.yml": (f"all:\n  hosts:\n    ws1:\n      ansible_connection: local\n"
                               f"      ansible_python_interpreter: {sys.executable}\n").encode()}
    files.update({f"roles/host_lock/{p.relative_to(ROLE).as_posix()}": p.read_bytes()
                  for p in ROLE.rglob("*") if p.is_file()})
    return runner.run(runner.RunRequest(run_dir=tmp_path / name, files=files, extravars={
        "host_lock_path": str(tmp_path / "lock" / "apply.lock"), "coderig_run_id": name, **extravars}))


def test_the_role_releases_the_lock_also_when_the_work_fails(tmp_path: Path) -> None:
    failed = _play(tmp_path, "run1", fail_work=True)
    assert host_results(["ws1"], failed.stats, failed.events)[0].reason == "the work failed"
    assert _lock("status", "--path", str(tmp_path / "lock" / "apply.lock"))[1]["held"] is False
    assert _play(tmp_path, "run2", host_lock_wait=0).status == "successful"


def test_a_second_run_waits_then_fails_naming_the_first(tmp_path: Path) -> None:
    """The first run holds the lock for 20 s (in a thread); the second gives up after 3 s."""
    outcomes: dict[str, runner.RunOutcome] = {}
    thread = threading.Thread(target=lambda: outcomes.update(first=_play(tmp_path, "first", hold_seconds=20)))
    thread.start()
    lock_path = str(tmp_path / "lock" / "apply.lock")
    deadline = time.monotonic() + 60
    while not _lock("status", "--path", lock_path)[1]["held"] and time.monotonic() < deadline:
        time.sleep(0.5)
    second = _play(tmp_path, "second", host_lock_wait=3, coderig_controller_pid=1)
    thread.join(120)
    result = host_results(["ws1"], second.stats, second.events)[0]
    assert result.status == "failed" and result.failed_task == "Ensure this apply holds the host lock."
    assert str(result.reason).startswith("host ws1 is being provisioned by another apply (run first from ")
    assert "waited 3 s" in str(result.reason)
    assert outcomes["first"].status == "successful"


def test_a_lock_left_by_a_dead_apply_of_this_controller_is_broken_at_once(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])  # stands for a coderig process killed mid-run
    dead.wait()
    lock_path = str(tmp_path / "lock" / "apply.lock")
    code, left = _lock("acquire", "--path", lock_path, "--run", "killed", "--controller", "me",
                       "--controller-id", _controller_id(), "--controller-pid", str(dead.pid))
    assert code == 0
    started = time.monotonic()
    again = _play(tmp_path, "rerun", host_lock_wait=60)
    assert again.status == "successful" and time.monotonic() - started < 50  # did not wait out the 60 s
    assert not _alive(left["holder"])


def _controller_id() -> str:
    return hashlib.sha256(Path("/etc/machine-id").read_text().strip().encode()).hexdigest()[:16]
