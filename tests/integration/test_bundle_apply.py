"""`apply --bundle` for real: a bundle built from the sandbox lab (signed with ssh-keygen)
installed over SSH on two sandbox hosts with no route out. A tampered bundle stops
before any host changes; the good one installs Ollama from its archive and the model
into the store (owned by ollama, manifest last); a rerun copies and hashes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.bundle import load_manifest
from coderig_deploy.sandbox import HostSpec, Lab
from tests.integration.conftest import LabFactory
from tests.unit.bundle.conftest import allowed_signers, make_deb, make_key

pytestmark = pytest.mark.integration

PROFILE = "budget-4070"
HOSTS = ("air1", "air2")
STORE = "/usr/share/ollama/.ollama/models"
STREAM = "Stream the piece to the host, verify its sha256 there"  # bundle_sync's copy: hashed as it arrives
UNTOUCHED = ("test -e /var/lib/coderig/bundle && echo markers; test -e /usr/local/bin/ollama && echo binary; "
             f"test -e {STORE} && echo store; test -e /var/cache/coderig && echo cache; true")


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True,
                          env=env, timeout=900, check=False)


def apply(lab: Lab, runs: Path, bundle: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = cli(lab, "apply", "--json", "--profile", PROFILE, "--runs-dir", str(runs), "--bundle", str(bundle),
               *args, "--sandbox")
    document = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, document, proc.stderr


def events(run_dir: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (Path(run_dir) / "artifacts" / "apply" / "job_events").glob("*.json")]


def ran(run_dir: str, task_prefix: str) -> list[str]:
    """Hosts on which a task whose name starts with `task_prefix` ran (not skipped)."""
    return sorted(e["event_data"]["host"] for e in events(run_dir)
                  if e.get("event") in ("runner_on_ok", "runner_on_failed")
                  and str(e["event_data"].get("task", "")).startswith(task_prefix))


@pytest.fixture(scope="module")
def lab(sandbox_lab: LabFactory) -> Lab:
    return sandbox_lab([HostSpec(name=name, gpu="rtx-4070") for name in HOSTS], name="bapply")


@pytest.fixture(scope="module")
def signed(lab: Lab, workdir: Path) -> tuple[Path, Path]:
    """`bundle build --sandbox --sign`, and the allowed-signers file that names the key."""
    key, public = make_key(workdir, "site-key")
    signers = allowed_signers(workdir / "allowed_signers", "security@site", public)
    debs = workdir / "debs"
    debs.mkdir()
    make_deb(debs, "nvidia-driver-dummy", "550.1-1")
    out = workdir / "bundle"
    result = cli(lab, "bundle", "build", "--profile", PROFILE, "--sandbox", "--debs", str(debs), "--sign", str(key),
                 "-o", str(out))
    assert result.returncode == 0, result.stderr
    return out, signers


def copy_of(bundle: Path, dest: Path) -> Path:
    subprocess.run(["cp", "-a", str(bundle), str(dest)], check=True)
    return dest


def test_a_tampered_bundle_stops_apply_before_any_host_changes(lab: Lab, signed: tuple[Path, Path],
                                                               workdir: Path) -> None:
    bundle, signers = signed
    runs = workdir / "runs-refused"
    tampered = copy_of(bundle, workdir / "tampered-blob")
    blob = load_manifest(tampered).models[0].blobs[-1].path
    data = bytearray((tampered / blob).read_bytes())
    data[0] ^= 0xFF
    (tampered / blob).write_bytes(bytes(data))
    code, _, stderr = apply(lab, runs, tampered)
    assert code == 1 and f"{blob}: sha256 differs" in " ".join(stderr.split()), stderr

    # bundle.json edited to match an altered profile: only the signature tells
    edited = copy_of(bundle, workdir / "tampered-json")
    profile = edited / "profiles" / f"{PROFILE}.yaml"
    profile.write_text(profile.read_text().replace("127.0.0.1:11434", "0.0.0.0:11434"))
    manifest = json.loads((edited / "bundle.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == f"profiles/{PROFILE}.yaml":
            entry["size"], entry["sha256"] = profile.stat().st_size, hashlib.sha256(profile.read_bytes()).hexdigest()
    (edited / "bundle.json").write_text(json.dumps(manifest))
    code, _, stderr = apply(lab, runs, edited, "--allowed-signers", str(signers))
    assert code == 1 and "bundle.json.sig: signature" in stderr, stderr

    assert not runs.exists()  # stopped before a run directory, so before any host
    for host in HOSTS:
        assert lab.ssh(host, UNTOUCHED).stdout.strip() == "", host


@pytest.fixture(scope="module")
def first(lab: Lab, signed: tuple[Path, Path], workdir: Path) -> dict[str, Any]:
    bundle, signers = signed
    code, document, stderr = apply(lab, workdir / "runs", bundle, "--allowed-signers", str(signers))
    assert code == 0, stderr + json.dumps(document.get("hosts"), indent=1)
    return document


def test_the_good_bundle_installs_archive_and_model_on_both_hosts(lab: Lab, signed: tuple[Path, Path],
                                                                   first: dict[str, Any]) -> None:
    manifest = load_manifest(signed[0])
    model, archive = manifest.models[0], manifest.ollama[0]
    assert [(h["host"], h["status"]) for h in first["hosts"]] == [(h, "ok") for h in HOSTS]
    assert sorted(set(ran(first["run_dir"], STREAM))) == list(HOSTS)
    store_manifest = f"{STORE}/{model.manifest_path.removeprefix('models/')}"
    for host in HOSTS:
        cached = f"/var/cache/coderig/ollama-{archive.version}-linux-amd64.tar.zst"
        out = lab.ssh(host, f"sha256sum {store_manifest} {cached}"
                            f" && stat -c '%U:%G:%a %n' {STORE}/blobs/* {store_manifest}"
                            f" && ls -A {STORE}/blobs | grep -c partial || true").stdout
        assert f"{model.manifest_digest[7:]}  {store_manifest}" in out, out
        assert f"{archive.sha256}  /var/cache" in out, out
        owners = [line.split()[0] for line in out.splitlines() if line.startswith(("ollama:", "root:"))]
        assert owners and set(owners) == {"ollama:ollama:644"}, out
        assert out.strip().splitlines()[-1] == "0", out  # no temporary copy left
        # the driver repository is there for apt, as the nvidia_driver role's trusted file: source
        # (the simulated driver is already loaded, so the role installs nothing here)
        listed = lab.ssh(host, "ls /var/lib/coderig/bundle/apt").stdout.split()
        assert {"Packages", "Packages.gz", "Release"} <= set(listed) and any(n.endswith(".deb") for n in listed)
        tags = json.loads(lab.ssh(host, "python3 -c 'import urllib.request as u; "
                                   "print(u.urlopen(\"http://127.0.0.1:11434/api/tags\").read().decode())'").stdout)
        digests = {m["name"]: m["digest"] for m in tags["models"]}
        assert digests[model.name].removeprefix("sha256:") == model.manifest_digest[7:], digests


def test_a_rerun_changes_nothing_and_neither_copies_nor_hashes(lab: Lab, signed: tuple[Path, Path],
                                                               first: dict[str, Any], workdir: Path) -> None:
    code, document, stderr = apply(lab, workdir / "runs", signed[0], "--allowed-signers", str(signed[1]))
    assert code == 0, stderr
    assert [(h["host"], h["status"], h["changed"]) for h in document["hosts"]] == [(h, "ok", 0) for h in HOSTS]
    assert ran(document["run_dir"], STREAM) == []
    assert sorted(set(ran(document["run_dir"], "Find which pieces are already on the host"))) == list(HOSTS)


def test_a_missing_blob_is_copied_again_on_that_host_only(lab: Lab, signed: tuple[Path, Path],
                                                          first: dict[str, Any], workdir: Path) -> None:
    model = load_manifest(signed[0]).models[0]
    blob = model.blobs[0]
    lab.ssh("air2", f"rm {STORE}/{blob.path.removeprefix('models/')}")
    code, document, stderr = apply(lab, workdir / "runs", signed[0])
    assert code == 0, stderr
    assert ran(document["run_dir"], STREAM) == ["air2"]
    assert {h["host"]: h["changed"] for h in document["hosts"]}["air1"] == 0


def validate(lab: Lab, bundle: Path, signers: Path, runs: Path) -> tuple[int, dict[str, Any], str]:
    proc = cli(lab, "validate", "--airgapped", "--sandbox", "--bundle", str(bundle), "--allowed-signers",
               str(signers), "--runs-dir", str(runs), "--json")
    document = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, document, proc.stderr


def checks_of(document: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {h["host"]: {c["name"]: c["status"] for c in h["checks"]} for h in document["hosts"]}


AIRGAP_CHECKS = ("no_default_route", "no_public_connection", "ollama_no_cloud", "site_registry_only", "model_digest")


def test_validate_airgapped_passes_on_the_installed_hosts(lab: Lab, signed: tuple[Path, Path],
                                                          first: dict[str, Any], workdir: Path) -> None:
    runs = workdir / "validate-runs"
    code, document, stderr = validate(lab, *signed, runs)
    assert code == 0, stderr + json.dumps(document, indent=1)[:3000]
    for host, checks in checks_of(document).items():
        assert all(checks[name] == "pass" for name in AIRGAP_CHECKS), (host, checks)
        assert "decode_speed" in checks or any(n.startswith("vram") for n in checks), checks  # the smoke benchmark
    (run_dir,) = list(runs.iterdir())
    assert {"report.json", "report.md", "junit.xml", "airgap.json"} <= {p.name for p in run_dir.iterdir()}
    probe = json.loads((run_dir / "airgap.json").read_text())["hosts"]["air1"]["probe"]
    assert all(a["errno"] == 101 and a["route"] is False for a in probe["attempts"])
    for host in HOSTS:  # the benchmark's temporary directory is gone
        assert lab.ssh(host, "ls -d /tmp/coderig-validate.* 2>/dev/null; true").stdout.strip() == ""


def test_validate_airgapped_fails_a_host_given_a_default_route(lab: Lab, signed: tuple[Path, Path],
                                                               first: dict[str, Any], workdir: Path) -> None:
    # No packet leaves: the probe only looks the route up (UDP connect) and does not try where one exists.
    # The host's root has no CAP_NET_ADMIN inside the sandbox: the route goes into its network namespace from here.
    netns = lab.host("air2").netns
    subprocess.run(["ip", "netns", "exec", netns, "ip", "route", "add", "default", "via", lab.bridge_ip], check=True)
    try:
        assert "default via" in lab.ssh("air2", "ip route").stdout
        code, document, stderr = validate(lab, *signed, workdir / "validate-route")
    finally:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "route", "del", "default"], check=True)
    assert code == 1, stderr
    checks = checks_of(document)
    assert checks["air2"]["no_default_route"] == "fail" and checks["air2"]["no_public_connection"] == "fail"
    assert all(checks["air1"][name] == "pass" for name in AIRGAP_CHECKS), checks["air1"]
    reasons = {h["host"]: h["reasons"] for h in document["hosts"]}
    assert any(f"default route via {lab.bridge_ip} dev" in r for r in reasons["air2"]), reasons["air2"]
