"""Integrity pins on a real sandbox host: a tampered archive, a wrong archive pin and a
wrong manifest pin each stop the run before Ollama or the model lands on the host (the
archive's on the controller already, against the release's sha256sum.txt, where it can);
with nothing given, the lab's own pins make `apply --sandbox` pass."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.profiles import load_profile
from coderig_deploy.sandbox import HostSpec, Lab, services

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")
PROFILE = "budget-4070"
HOST = "pin1"
WRONG = "sha256:" + "0" * 64


def apply(lab: Lab, runs: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, "apply", "--json", "--runs-dir", str(runs), "--profile", PROFILE, "--sandbox", *args],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def host_of(document: dict[str, Any]) -> dict[str, Any]:
    return next(h for h in document["hosts"] if h["host"] == HOST)


def ollama_absent(lab: Lab) -> None:
    probe = lab.ssh(HOST, "test -e /usr/local/bin/ollama || test -e /etc/systemd/system/ollama.service "
                          "|| test -d /usr/local/lib/ollama; echo $?")
    assert probe.stdout.strip() == "1", "the Ollama binary, libraries or unit landed on the host"


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    return sandbox_lab([HostSpec(name=HOST, gpu="rtx-4070", count=1)], name="pins")


def served_archive(lab: Lab) -> Path:
    ollama_version = load_profile(PROFILE).ollama.version
    return (lab.home / "services" / "artifacts" / "ollama" / "releases" / "download" / f"v{ollama_version}"
            / "ollama-linux-amd64.tar.zst")


def refused(lab: Lab, runs: Path, *args: str) -> str:
    """`apply --sandbox` that must stop on the controller (exit 2, one line): its stderr."""
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, "apply", "--runs-dir", str(runs), "--profile", PROFILE, "--sandbox", *args],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not runs.exists()  # stopped before a run directory, let alone a host
    return " ".join(proc.stderr.split())


def test_a_tampered_archive_on_the_lab_server_stops_the_run(lab: Lab, tmp_path: Path) -> None:
    """Altered on the server together with its sha256sum.txt, as an attacker on the path would:
    the controller's release check sees the list disagree with the lab's pin (issue 13)."""
    archive = served_archive(lab)
    genuine = archive.read_bytes()
    checksums = archive.parent / "sha256sum.txt"
    genuine_sums = checksums.read_text()
    tampered = genuine + b"\0evil"
    archive.write_bytes(tampered)
    checksums.write_text(f"{hashlib.sha256(tampered).hexdigest()}  ./{archive.name}\n")
    try:
        with urllib.request.urlopen(f"{services.urls(lab)['ollama_download_base']}/{archive.parent.name}/"
                                    f"{archive.name}", timeout=10) as response:
            assert response.read() == tampered  # the server really serves the altered file
        error = refused(lab, tmp_path / "runs", "--no-bench")
    finally:
        archive.write_bytes(genuine)
        checksums.write_text(genuine_sums)
    assert "disagrees with" in error and f"{archive.parent.name}/sha256sum.txt" in error, error
    ollama_absent(lab)


def test_an_archive_altered_for_the_hosts_only_fails_on_the_host(lab: Lab, tmp_path: Path) -> None:
    """The list still agrees with the pin (the controller's check passes), the archive does not:
    the host's own check of the download against the pin stops it before unpacking."""
    archive = served_archive(lab)
    genuine = archive.read_bytes()
    archive.write_bytes(genuine + b"\0evil")
    try:
        code, doc = apply(lab, tmp_path / "runs", "--no-bench")
    finally:
        archive.write_bytes(genuine)
    host = host_of(doc)
    assert code == 1 and host["status"] == "failed", host
    assert host["failed_role"] == "ollama" and "checksum" in (host["reason"] or "").lower(), host
    assert doc["ollama_release_check"]["status"] == "verified", doc["ollama_release_check"]
    ollama_absent(lab)


def test_a_mismatched_archive_pin_stops_the_run(lab: Lab, tmp_path: Path) -> None:
    error = refused(lab, tmp_path / "runs", "--no-bench", "--ollama-sha256", WRONG)
    assert f"the pin {WRONG} disagrees with" in error and "sha256sum.txt" in error, error
    ollama_absent(lab)


def test_a_mismatched_manifest_pin_stops_the_pull(lab: Lab, tmp_path: Path) -> None:
    code, doc = apply(lab, tmp_path / "runs", "--no-bench", "--model-digest", WRONG)
    host = host_of(doc)
    assert code == 1 and host["failed_role"] == "models", host
    assert f"the pin is {WRONG}" in (host["reason"] or ""), host
    assert "nothing was pulled" in host["reason"]
    tags = lab.ssh(HOST, "curl -s http://127.0.0.1:11434/api/tags").stdout
    assert json.loads(tags)["models"] == [], tags  # no manifest, so no model, in the store
    blobs = lab.ssh(HOST, "ls /usr/share/ollama/.ollama/models/blobs 2>/dev/null | wc -l").stdout.strip()
    assert blobs == "0"


def test_the_lab_pins_itself_and_apply_passes(lab: Lab, tmp_path: Path) -> None:
    code, doc = apply(lab, tmp_path / "runs")
    host = host_of(doc)
    assert code == 0 and host["status"] == "ok", host
    group_vars = (Path(doc["run_dir"]) / "project" / "group_vars" / "all.yml").read_text()
    archive_pin = services.archive_pin(lab, served_archive(lab).parent.name.removeprefix("v"))
    assert archive_pin and f'ollama_archive_checksum: "{archive_pin}"' in group_vars
    assert 'models_manifest_digest: "sha256:' in group_vars and "sha256sum.txt" not in group_vars
    report = json.loads((Path(doc["run_dir"]) / "report.json").read_text())
    assert not [c for h in report["hosts"] for c in h["checks"] if c["name"] == "integrity"]
    (release,) = [c for h in report["hosts"] for c in h["checks"] if c["name"] == "ollama_release"]
    assert release["status"] == "pass" and "the pin matches" in release["reason"], release


# --- a local apt repository's signing key: trusted only when its fingerprint matches ----------

KEYS = Path(__file__).parent.parent / "unit" / "fixtures" / "keys"
RSA_FPR = "48220EFF535118438BD0CBA7E1B2E37557E2FF3F"
OTHER_FPR = "84D27424F187A0D4EEBA1A6150084D1D4CF58D69"
BARE = "bare2"


@pytest.fixture(scope="module")
def key_server(sandbox_lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A lab host without a driver, and an HTTP server on the lab's bridge serving a signing key."""
    lab = sandbox_lab([HostSpec(name=BARE, gpu="rtx-4070", count=1, driver_installed=False)], name="pinkey")
    root = tmp_path_factory.mktemp("keysrv")
    (root / "key.asc").write_bytes((KEYS / "rsa-v4.asc").read_bytes())
    with socket.socket() as probe:
        probe.bind((lab.bridge_ip, 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", lab.bridge_ip,
                               "--directory", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://{lab.bridge_ip}:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/key.asc", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield lab, base
    server.terminate()
    server.wait(timeout=10)


def local_repo_apply(lab: Lab, base: str, tmp_path: Path, fingerprint: str) -> tuple[int, dict[str, Any]]:
    profiles = tmp_path / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "offline.yaml").write_text(
        f"extends: {PROFILE}\ndriver:\n  source: local-repo\n  local_repo_url: {base}/repo\n"
        f"  local_repo_key_url: {base}/key.asc\n  repo_key_fingerprint: {fingerprint}\n")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, "apply", "--json", "--no-bench", "--runs-dir", str(tmp_path / "runs"),
                           "--profile", "offline", "--profiles-dir", str(profiles), "--sandbox"],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def test_a_repository_key_with_another_fingerprint_is_not_trusted(key_server: Any, tmp_path: Path) -> None:
    lab, base = key_server
    code, doc = local_repo_apply(lab, base, tmp_path, OTHER_FPR)
    (host,) = doc["hosts"]
    assert code == 1 and host["failed_role"] == "nvidia_driver", host
    assert f"holds key(s) {RSA_FPR}" in host["reason"] and f"the pin is {OTHER_FPR}" in host["reason"], host
    after = lab.ssh(BARE, "ls /etc/apt/keyrings/coderig-nvidia-local.asc "
                          "/etc/apt/sources.list.d/coderig-nvidia-local.sources 2>&1; true").stdout
    assert after.count("No such file") == 2, after


def test_a_repository_key_with_the_pinned_fingerprint_is_trusted(key_server: Any, tmp_path: Path) -> None:
    lab, base = key_server
    code, doc = local_repo_apply(lab, base, tmp_path, RSA_FPR)
    (host,) = doc["hosts"]
    # The key passes; the repository itself does not exist here, so apt fails after it.
    assert code == 1 and host["failed_role"] == "nvidia_driver", host
    assert "the pin is" not in (host["reason"] or "") and "repository" in (host["failed_task"] or ""), host
    installed = lab.ssh(BARE, "cat /etc/apt/keyrings/coderig-nvidia-local.asc").stdout
    assert installed == (KEYS / "rsa-v4.asc").read_text()
