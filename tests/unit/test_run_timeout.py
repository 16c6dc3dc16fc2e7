"""`apply --timeout`: runner stops a run at its limit; unfinished hosts end as "timeout" (exit 1)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from runner_fixtures import load

from coderig_deploy import runner
from coderig_deploy.results import exit_code, host_results

# A real ansible-playbook on the controller itself: one quick task, then one that hangs.
SITE = b"""---
- name: A play that outlives its time limit
  hosts: all
  gather_facts: false
  tasks:
    - name: Answer at once.
      ansible.builtin.command: "true"
      changed_when: false
    - name: Hang far longer than the limit.
      ansible.builtin.command: sleep 120
      changed_when: false
"""
# Long enough for ansible-playbook to start and finish the first task on a loaded 2-core
# machine (8 s was not, under load 12), short against the 120 s task it cuts.
LIMIT = 25
INVENTORY = (f"all:\n  hosts:\n    local1:\n      ansible_connection: local\n"
             f"      ansible_python_interpreter: {sys.executable}\n").encode()


def test_a_run_past_its_timeout_is_stopped_and_its_host_ends_as_timeout(tmp_path: Path) -> None:
    request = runner.RunRequest(run_dir=tmp_path / "run", files={"site.yml": SITE, "inventory.yml": INVENTORY,
                                       "ansible.cfg": b"[ssh_connection]\nssh_args = -o StrictHostKeyChecking=yes\n"},
                                timeout=LIMIT)
    started = time.monotonic()
    outcome = runner.run(request)
    took = time.monotonic() - started
    assert outcome.status == "timeout" and LIMIT <= took < 110  # stopped long before the 120 s task ends
    # Nothing of the run goes on: not ansible-playbook, and not the host's worker, which Ansible starts in a session
    # of its own (out of the process group runner kills) and which would otherwise sleep on for the full 120 s.
    assert runner.pids_naming(request.run_dir / "inventory") == []
    results = host_results(["local1"], outcome.stats, outcome.events, timeout=LIMIT)
    assert [(r.host, r.status) for r in results] == [("local1", "timeout")]
    assert results[0].ok >= 1 and results[0].reason == f"the run's time limit ({LIMIT} s) ended before this host finished"
    assert exit_code(results) == 1


def test_leftover_workers_of_a_stopped_run_are_killed_and_nothing_else(tmp_path: Path) -> None:
    # A stand-in for a worker that outlived its playbook: its own session, the run's inventory on its command line.
    run_dir = tmp_path / "run"
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-i", str(run_dir / "inventory")],
                              start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-i",
                                  str(tmp_path / "other" / "inventory")], start_new_session=True)
    try:
        assert runner.stop_leftover_workers(run_dir) == [worker.pid]
        assert worker.wait(timeout=10) == -signal.SIGKILL
        assert bystander.poll() is None  # another run's process is left alone
    finally:
        for proc in (worker, bystander):
            proc.kill()
            proc.wait()


def test_timeout_marks_every_unfinished_host_and_keeps_real_failures() -> None:
    events, _, _ = load("converged_with_mismatch")
    cut = next(i for i, e in enumerate(events) if e["event_data"].get("role") == "ollama")
    results = {r.host: r for r in host_results(["gpu2", "small", "later"], {}, events[:cut], timeout=600)}
    assert results["gpu2"].status == "timeout" and "600 s" in str(results["gpu2"].reason)
    assert results["small"].status == "failed"  # it failed before the limit: that failure is its reason
    assert results["later"].status == "timeout"
    assert exit_code(list(results.values())) == 1


def test_the_playbook_learns_the_run_id_this_process_and_a_lease_from_the_timeout(tmp_path: Path) -> None:
    import os

    from coderig_deploy.apply import LOCK_LEASE_MARGIN_S, run_extravars

    run_dir = tmp_path / "20261130T190000Z"
    plain = run_extravars(run_dir, None)
    assert plain == {"coderig_run_dir": str(run_dir), "coderig_run_id": "20261130T190000Z",
                     "coderig_controller_pid": os.getpid()}
    assert run_extravars(run_dir, 600)["host_lock_lease"] == 600 + LOCK_LEASE_MARGIN_S


def test_a_timeout_out_of_bounds_is_bad_input(tmp_path: Path) -> None:
    import subprocess

    for bad in ("0", "-5", "604801", "soon"):
        proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "apply", "--profile", "budget-4070",
                               "--runs-dir", str(tmp_path), "--timeout", bad, "localhost"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2 and "--timeout" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())  # nothing ran
