"""Integrity pins on a real sandbox host: a tampered archive, a wrong archive pin and a
wrong manifest pin each stop the run before Ollama or the model lands on the host;
with nothing given, the lab's own pins make `apply --sandbox` pass."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
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


def test_a_tampered_archive_on_the_lab_server_stops_the_run(lab: Lab, tmp_path: Path) -> None:
    archive = served_archive(lab)
    genuine = archive.read_bytes()
    # Altered on the server together with its sha256sum.txt, as an attacker on the path would.
    checksums = archive.parent / "sha256sum.txt"
    genuine_sums = checksums.read_text()
    tampered = genuine + b"\0evil"
    archive.write_bytes(tampered)
    checksums.write_text(f"{hashlib.sha256(tampered).hexdigest()}  ./{archive.name}\n")
    try:
        with urllib.request.urlopen(f"{services.urls(lab)['ollama_download_base']}/{archive.parent.name}/"
                                    f"{archive.name}", timeout=10) as response:
            assert response.read() == tampered  # the server really serves the altered file
        code, doc = apply(lab, tmp_path / "runs", "--no-bench")
    finally:
        archive.write_bytes(genuine)
        checksums.write_text(genuine_sums)
    host = host_of(doc)
    assert code == 1 and host["status"] == "failed", host
    assert host["failed_role"] == "ollama" and "checksum" in (host["reason"] or "").lower(), host
    ollama_absent(lab)


def test_a_mismatched_archive_pin_stops_the_run(lab: Lab, tmp_path: Path) -> None:
    code, doc = apply(lab, tmp_path / "runs", "--no-bench", "--ollama-sha256", WRONG)
    host = host_of(doc)
    assert code == 1 and host["failed_role"] == "ollama", host
    assert "checksum" in (host["reason"] or "").lower(), host
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
