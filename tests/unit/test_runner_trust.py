"""A real ansible-runner run (local connection, a tiny project): the run directory holds
no controller secret and no gathered fact, host key checking is on, and the private
control directory is gone afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coderig_deploy import runner

SITE = b"""---
- name: Gather facts and set one summary fact
  hosts: all
  gather_facts: true
  gather_subset: ["!all", "min", "hardware"]
  tasks:
    - name: Record a summary fact the report keeps.
      ansible.builtin.set_fact:
        preflight_summary: {ok: true}
"""
CFG = b"""[defaults]
host_key_checking = True
[ssh_connection]
ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes
"""
INVENTORY = b"""all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: /usr/bin/python3
"""
SECRETS = {"GITHUB_TOKEN": "ghp_FAKEtoken1234567890", "AWS_SECRET_ACCESS_KEY": "FAKEawsSECRETvalue987",
           "http_proxy": "http://user:S3CRETproxypw@proxy.invalid:3128"}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> runner.RunOutcome:
    mp = pytest.MonkeyPatch()
    for name, value in SECRETS.items():
        mp.setenv(name, value)
    try:
        run_dir = tmp_path_factory.mktemp("r")
        return runner.run(runner.RunRequest(run_dir=run_dir, files={
            "site.yml": SITE, "ansible.cfg": CFG, "inventory.yml": INVENTORY}))
    finally:
        mp.undo()


def _texts(run_dir: Path) -> dict[Path, str]:
    return {p: p.read_text(errors="ignore") for p in run_dir.rglob("*") if p.is_file()}


def test_the_run_passed_and_kept_the_summary_fact(outcome: runner.RunOutcome) -> None:
    assert outcome.status == "successful", outcome
    facts = [e["event_data"]["res"]["ansible_facts"] for e in outcome.events
             if e.get("event") == "runner_on_ok" and "ansible_facts" in e["event_data"].get("res", {})]
    assert {"preflight_summary": {"ok": True}} in facts
    assert all(set(f) <= {"preflight_summary"} for f in facts), facts


def test_no_controller_secret_anywhere_in_the_run_dir(outcome: runner.RunOutcome) -> None:
    texts = _texts(outcome.artifacts.parent.parent)
    assert any(p.name == "command" for p in texts)  # runner's record of the job environment
    for path, text in texts.items():
        for secret in ("ghp_FAKEtoken", "FAKEawsSECRET", "S3CRETproxypw"):
            assert secret not in text, f"{secret} in {path}"


def test_no_gathered_fact_in_the_stored_events(outcome: runner.RunOutcome) -> None:
    machine_id = Path("/etc/machine-id").read_text().strip()
    assert machine_id
    stored = _texts(outcome.artifacts / "job_events")
    assert stored
    for path, text in stored.items():
        assert machine_id not in text and "ansible_mounts" not in text and "memtotal_mb" not in text, path


def test_host_key_checking_is_on_in_the_job_environment(outcome: runner.RunOutcome) -> None:
    env = json.loads((outcome.artifacts / "command").read_text())["env"]
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert "StrictHostKeyChecking=yes" in env["ANSIBLE_SSH_ARGS"]
    assert "StrictHostKeyChecking=no" not in json.dumps(env)
    assert env["http_proxy"] == "http://proxy.invalid:3128"
    assert not Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"]).exists()
