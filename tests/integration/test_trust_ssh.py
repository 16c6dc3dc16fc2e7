"""SSH trust and run-directory hygiene, against a booted sandbox host.

`apply` and `verify` refuse a host whose key does not match the known_hosts file in
use and a host that is not in it, and touch nothing on it; `--accept-new-host-keys`
records a new host's key and still refuses a changed one. A full apply run with fake
secrets in the controller environment leaves none of them, and none of the host's
gathered facts, anywhere under its run directory. The ssh command line Ansible
builds from the run's own job environment is read back with -vvv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy import controldir
from coderig_deploy.sandbox import HostSpec, Lab

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")
PROFILE = "budget-4070"
HOST = "trust1"
SECRETS = {"GITHUB_TOKEN": "ghp_FAKEtrustTOKEN0123456789", "AWS_SECRET_ACCESS_KEY": "FAKEawsTRUSTsecret42",
           "http_proxy": "http://user:S3CRETtrustPW@proxy.invalid:3128"}
UNTOUCHED = ("id ollama; test -e /etc/systemd/system/ollama.service && echo unit; "
             "test -e /usr/local/bin/ollama && echo binary; test -e /var/cache/coderig && echo cache; true")


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    return sandbox_lab([HostSpec(name=HOST, gpu="rtx-4070", count=1)], name="trust")


def cli(lab: Lab, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home), **(extra_env or {})}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, check=False, timeout=900)


def apply(lab: Lab, runs: Path, *args: str, extra_env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    proc = cli(lab, "apply", "--json", "--runs-dir", str(runs), "--profile", PROFILE, "--sandbox", *args,
               extra_env=extra_env)
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def verify_reasons(lab: Lab) -> tuple[int, set[str]]:
    proc = cli(lab, "verify", "--sandbox", "--profile", PROFILE, "--json")
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    (host,) = json.loads(proc.stdout)["hosts"]
    return proc.returncode, {c["reason"] for c in host["checks"]}


def other_key(tmp_path: Path) -> str:
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


@contextmanager
def known_hosts_as(lab: Lab, text: str) -> Iterator[Path]:
    """The lab's known_hosts replaced by `text` for the block, then restored."""
    original = lab.known_hosts.read_text()
    lab.known_hosts.write_text(text)
    try:
        yield lab.known_hosts
    finally:
        lab.known_hosts.write_text(original)


def assert_untouched(lab: Lab) -> None:
    out = lab.ssh(HOST, UNTOUCHED)
    assert "no such user" in out.stderr and out.stdout.strip() == "", out


def test_a_wrong_host_key_is_refused_by_apply_and_verify(lab: Lab, tmp_path: Path) -> None:
    ip = lab.host(HOST).ip
    with known_hosts_as(lab, f"{ip},{HOST} {other_key(tmp_path)}\n") as known:
        code, doc = apply(lab, tmp_path / "runs", "--no-bench")
        verify_code, reasons = verify_reasons(lab)
    (host,) = doc["hosts"]
    assert code == 1 and host["status"] == "unreachable" and host["changed"] == 0, host
    assert host["reason"].startswith(f"host key for {ip} does not match known_hosts {known}: refused"), host
    assert verify_code == 1 and any(f"host key for {ip} does not match known_hosts" in r for r in reasons), reasons
    assert_untouched(lab)


def test_an_unknown_host_is_refused_with_how_to_add_its_key(lab: Lab, tmp_path: Path) -> None:
    ip = lab.host(HOST).ip
    with known_hosts_as(lab, "") as known:
        code, doc = apply(lab, tmp_path / "runs", "--no-bench")
        verify_code, reasons = verify_reasons(lab)
        assert known.read_text() == ""  # nothing recorded without --accept-new-host-keys
    (host,) = doc["hosts"]
    assert code == 1 and host["status"] == "unreachable", host
    assert host["reason"].startswith(f"unknown host {ip}: its key is not in known_hosts {known}"), host
    assert f"ssh-keyscan {ip} >> {known}" in host["reason"] and doc["host_keys_recorded"] == []
    assert verify_code == 1 and any(f"unknown host {ip}" in r for r in reasons), reasons
    assert_untouched(lab)


def test_accept_new_records_the_key_and_a_changed_key_is_still_refused(lab: Lab, tmp_path: Path) -> None:
    ip = lab.host(HOST).ip
    real_key = " ".join(lab.host(HOST).host_key.split()[:2])
    with known_hosts_as(lab, "") as known:
        code, doc = apply(lab, tmp_path / "runs", "--no-bench", "--tags", "preflight", "--accept-new-host-keys")
        (host,) = doc["hosts"]
        assert code == 0 and host["status"] == "ok", host
        assert doc["accept_new_host_keys"] is True
        assert doc["host_keys_recorded"] == [f"{known}: {ip} {real_key.split()[0]}"]
        (entry,) = known.read_text().splitlines()
        assert entry.split()[1:] == real_key.split()
        ssh_line = _ansible_ssh_command_line(Path(doc["run_dir"]))
        known.write_text(f"{ip} {other_key(tmp_path)}\n")
        code, doc = apply(lab, tmp_path / "runs", "--no-bench", "--tags", "preflight", "--accept-new-host-keys")
    (host,) = doc["hosts"]
    assert code == 1 and host["status"] == "unreachable", host
    assert host["reason"].startswith(f"host key for {ip} does not match known_hosts {known}"), host
    assert "StrictHostKeyChecking=no" not in ssh_line
    assert ssh_line.split("StrictHostKeyChecking=")[1].split()[0] == "accept-new"
    assert_untouched(lab)


def _ansible_ssh_command_line(run_dir: Path) -> str:
    """The ssh command Ansible runs under the run's own job environment (from its artifacts)."""
    env = json.loads((run_dir / "artifacts/apply/command").read_text())["env"]
    env = {k: v for k, v in env.items() if not k.startswith(("AWX_", "ANSIBLE_STDOUT", "ANSIBLE_CALLBACK"))}
    control = Path(tempfile.mkdtemp(prefix="cp-", dir="/tmp"))  # short: socket path limit
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control)
    try:
        proc = subprocess.run(["ansible", "-i", str(run_dir / "inventory/hosts.yml"), "all", "-m",
                               "ansible.builtin.ping", "-vvv"], env=env, cwd=run_dir / "project",
                              capture_output=True, text=True, check=False, timeout=120)
    finally:
        controldir.remove(control)
    lines = [line for line in proc.stdout.splitlines() if "SSH: EXEC ssh" in line]
    assert lines and proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return lines[0]


def test_no_controller_secret_and_no_fact_in_the_run_directory(lab: Lab, tmp_path: Path) -> None:
    code, doc = apply(lab, tmp_path / "runs", "--no-bench", extra_env=SECRETS)
    (host,) = doc["hosts"]
    assert code == 0 and host["status"] == "ok", host
    run_dir = Path(doc["run_dir"])
    host_facts = lab.ssh(HOST, "cat /etc/machine-id /sys/class/dmi/id/product_uuid 2>/dev/null").stdout.split()
    assert host_facts and len(host_facts[0]) == 32  # machine-id; product_uuid where the kernel shows it
    needles = ["ghp_FAKEtrustTOKEN", "FAKEawsTRUSTsecret", "S3CRETtrustPW", *host_facts,
               "ansible_mounts", "ansible_cmdline", "ansible_product_serial", "ansible_machine_id"]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files) and any("job_events" in p.parts for p in files)
    for path in files:
        text = path.read_text(errors="ignore")
        for needle in needles:
            assert needle not in text, f"{needle!r} in {path}"
    assert not (run_dir / "cp").exists()  # the control socket directory went with the run
