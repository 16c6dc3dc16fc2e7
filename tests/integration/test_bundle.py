"""Offline bundles for real: built from a sandbox lab's artifact server and
docker-registry, signed and verified with ssh-keygen, its apt repository
installed by apt on a sandbox host, and its models pushed to a fresh
docker-registry and pulled back by digest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from coderig_deploy.bundle import load_manifest
from coderig_deploy.bundle.oci import ACCEPT
from coderig_deploy.bundle.push import push
from coderig_deploy.sandbox import HostSpec, Lab, registry
from tests.integration.conftest import LabFactory
from tests.integration.ollama_sim_support import free_port, stop_pid
from tests.unit.bundle.conftest import allowed_signers, make_deb, make_key

PROFILE = "budget-4070"
TAG = "qwen2.5-coder:14b-instruct-q4_K_M"


def cli(*args: str, lab: Lab | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"CODERIG_SANDBOX_HOME": str(lab.home)} if lab else {})}
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


@pytest.fixture(scope="module")
def lab(sandbox_lab: LabFactory) -> Lab:
    return sandbox_lab([HostSpec(name="air1", gpu="rtx-4070")], name="bundle")


@pytest.fixture(scope="module")
def signers(workdir: Path) -> tuple[Path, Path]:
    key, public = make_key(workdir, "site-key")
    return key, allowed_signers(workdir / "allowed_signers", "security@site", public)


@pytest.fixture(scope="module")
def built(lab: Lab, workdir: Path, signers: tuple[Path, Path]) -> Path:
    """`bundle build --sandbox --debs --sign`, once for the module."""
    debs = workdir / "debs"
    debs.mkdir()
    make_deb(debs, "nvidia-driver-dummy", "550.1-1")
    out = workdir / "bundle"
    result = cli("bundle", "build", "--profile", PROFILE, "--sandbox", "--debs", str(debs),
                 "--sign", str(signers[0]), "-o", str(out), lab=lab)
    assert result.returncode == 0, result.stderr
    assert "done" in result.stderr and TAG in result.stdout
    return out


def fresh_registry(workdir: Path, name: str) -> Iterator[str]:
    process = registry.start(workdir / name, "127.0.0.1", free_port())
    yield process.address
    stop_pid(process.pid)


@pytest.fixture
def site_registry(workdir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_registry(workdir, f"site-{request.node.name[:20]}")


def test_the_bundle_holds_what_the_lab_serves(built: Path, lab: Lab) -> None:
    manifest = load_manifest(built)
    served = urllib.request.urlopen(f"http://{lab.bridge_ip}:8088/ollama/releases/download/"
                                    f"v{manifest.ollama[0].version}/sha256sum.txt", timeout=10).read().decode()
    assert manifest.ollama[0].sha256 in served and not manifest.ollama[0].pinned
    model = manifest.models[0]
    request = urllib.request.Request(f"http://{lab.bridge_ip}:5000/v2/library/qwen2.5-coder/manifests/"
                                     "14b-instruct-q4_K_M", headers={"Accept": ACCEPT})
    assert "sha256:" + hashlib.sha256(urllib.request.urlopen(request, timeout=10).read()).hexdigest() \
        == model.manifest_digest
    assert manifest.apt is not None and [p.package for p in manifest.apt.packages] == ["nvidia-driver-dummy"]


def test_verify_with_allowed_signers_passes(built: Path, signers: tuple[Path, Path]) -> None:
    result = cli("bundle", "verify", str(built), "--allowed-signers", str(signers[1]), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["signed_by"] == "security@site" and report["hashed"]


def test_the_apt_repository_installs_with_apt_on_a_host(built: Path, lab: Lab) -> None:
    client = lab.paramiko("air1")
    try:
        lab.ssh("air1", "mkdir -p /srv/bundle-apt")
        sftp = client.open_sftp()
        for path in sorted((built / "apt").iterdir()):
            sftp.put(str(path), f"/srv/bundle-apt/{path.name}")
        sftp.close()
    finally:
        client.close()
    only_ours = "-o Dir::Etc::sourcelist=/etc/apt/sources.list.d/bundle.list -o Dir::Etc::sourceparts=-"
    result = lab.ssh("air1", "echo 'deb [trusted=yes] file:/srv/bundle-apt ./' > /etc/apt/sources.list.d/bundle.list"
                     f" && apt-get {only_ours} update && DEBIAN_FRONTEND=noninteractive apt-get {only_ours} "
                     "install -y nvidia-driver-dummy && dpkg-query -W -f '${Version}' nvidia-driver-dummy",
                     timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("550.1-1")


def test_push_then_pull_back_by_digest(built: Path, site_registry: str, workdir: Path, lab: Lab) -> None:
    manifest = load_manifest(built)
    model = manifest.models[0]
    result = cli("bundle", "push", str(built), "--registry", site_registry, "--json")
    assert result.returncode == 0, result.stderr
    pushed = json.loads(result.stdout)
    assert pushed == [{"name": TAG, "reference": f"{site_registry}/library/qwen2.5-coder:14b-instruct-q4_K_M",
                       "manifest_digest": model.manifest_digest, "blobs_uploaded": len(model.blobs),
                       "blobs_present": 0}]
    request = urllib.request.Request(f"http://{site_registry}/v2/{model.repository}/manifests/"
                                     f"{model.manifest_digest}", headers={"Accept": ACCEPT})
    assert urllib.request.urlopen(request, timeout=10).read() == (built / model.manifest_path).read_bytes()
    again = cli("bundle", "push", str(built), "--registry", site_registry, "--json")
    assert json.loads(again.stdout)[0]["blobs_present"] == len(model.blobs)
    # and a bundle built from the site registry carries the same bytes (the pull path)
    copy = workdir / "from-site"
    archive = manifest.ollama[0]
    rebuilt = cli("bundle", "build", "--profile", PROFILE, "--registry", site_registry, "-o", str(copy),
                  "--ollama-url", archive.source_url, "--ollama-sha256", f"sha256:{archive.sha256}",
                  "--model-digest", model.manifest_digest)  # plain HTTP: the pin is the pushed digest
    assert rebuilt.returncode == 0, rebuilt.stderr
    again_manifest = load_manifest(copy)
    assert again_manifest.models[0].manifest_digest == model.manifest_digest
    assert again_manifest.models[0].source == f"http://{site_registry}" and again_manifest.ollama[0].pinned
    assert cli("bundle", "verify", str(copy)).returncode == 0


def test_chunked_upload_stores_the_same_blobs(built: Path, site_registry: str) -> None:
    model = load_manifest(built).models[0]
    pushed = push(built, site_registry, chunk_size=64)  # every blob above 64 B goes up in PATCH chunks
    assert pushed[0].manifest_digest == model.manifest_digest
    for blob in model.blobs:
        data = urllib.request.urlopen(f"http://{site_registry}/v2/{model.repository}/blobs/{blob.digest}",
                                      timeout=10).read()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == blob.digest


def test_tampering_is_named_and_exits_1(built: Path, signers: tuple[Path, Path], workdir: Path,
                                        site_registry: str) -> None:
    tampered = workdir / "tampered"
    subprocess.run(["cp", "-a", str(built), str(tampered)], check=True)
    blob = load_manifest(tampered).models[0].blobs[-1].path
    data = bytearray((tampered / blob).read_bytes())
    data[0] ^= 0xFF
    (tampered / blob).write_bytes(bytes(data))
    result = cli("bundle", "verify", str(tampered), "--allowed-signers", str(signers[1]))
    assert result.returncode == 1 and blob in result.stdout and "sha256 differs" in result.stdout
    refused = cli("bundle", "push", str(tampered), "--registry", site_registry)
    assert refused.returncode == 1 and f"{blob}: sha256 differs" in refused.stderr.replace("\n", "")
    assert json.loads(urllib.request.urlopen(f"http://{site_registry}/v2/_catalog", timeout=10).read()) \
        == {"repositories": []}

    # a changed profile with bundle.json edited to match: only the signature can tell
    (tampered / blob).write_bytes((built / blob).read_bytes())
    profile = tampered / "profiles" / f"{PROFILE}.yaml"
    profile.write_text(profile.read_text().replace("127.0.0.1:11434", "0.0.0.0:11434"))
    manifest = json.loads((tampered / "bundle.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == f"profiles/{PROFILE}.yaml":
            entry["size"], entry["sha256"] = profile.stat().st_size, hashlib.sha256(profile.read_bytes()).hexdigest()
    (tampered / "bundle.json").write_text(json.dumps(manifest))
    assert cli("bundle", "verify", str(tampered)).returncode == 0  # consistent, but unsigned content
    result = cli("bundle", "verify", str(tampered), "--allowed-signers", str(signers[1]), "--json")
    assert result.returncode == 1
    assert [(p["path"], p["problem"]) for p in json.loads(result.stdout)["problems"]] == \
        [("bundle.json.sig", "signature")]
