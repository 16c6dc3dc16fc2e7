"""The Ollama image from an offline bundle (issue 12, deliverable 3), for real: `bundle
build --sandbox` fetches the lab's pinned simulator image by digest into a docker-save
archive; the lab's registry is then stopped, so the host cannot pull; `apply --bundle`
copies the archive (hashed on the host), `docker load`s it and runs it by its image ID
with the GPU; the benchmark passes; a rerun copies, loads and changes nothing; a
tampered archive stops the apply before the host is touched. One docker host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.bundle import load_manifest
from coderig_deploy.bundle.manifest import ImageEntry
from coderig_deploy.sandbox import HostSpec, Lab, processes, registry, services
from tests.integration.conftest import LabFactory
from tests.integration.ollama_sim_support import stop_pid
from tests.integration.test_bundle_apply import ran as ran_on

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[1] / "unit" / "container" / "profiles"
PROFILE = "budget-4070-docker"
HOST = "box"
STREAM = "Stream the piece to the host, verify its sha256 there"
LOAD = "Load the image archive into Docker."
PULL = "Ensure the pinned image is pulled."
UNTOUCHED = "test -e /var/lib/coderig/bundle && echo markers; command -v docker && echo docker; true"


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True,
                          env=env, timeout=900, check=False)


def apply(lab: Lab, runs: Path, bundle: Path) -> tuple[int, dict[str, Any], str]:
    proc = cli(lab, "apply", "--json", "--profile", PROFILE, "--profiles-dir", str(PROFILES),
               "--runs-dir", str(runs), "--bundle", str(bundle), "--sandbox")
    document = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    return proc.returncode, document, proc.stderr


def ran(run_dir: str, task_prefix: str) -> int:
    """How many times a task whose name starts with `task_prefix` ran (not skipped)."""
    return len(ran_on(run_dir, task_prefix))


@pytest.fixture(scope="module")
def lab(sandbox_lab: LabFactory) -> Lab:
    return sandbox_lab([HostSpec(name=HOST, gpu="rtx-4070", count=1, docker=True)], name="dbundle")


@pytest.fixture(scope="module")
def bundle(lab: Lab, workdir: Path) -> Path:
    """Built from the lab's registry, which is stopped afterwards: nothing can be pulled."""
    out = workdir / "bundle"
    built = cli(lab, "bundle", "build", "--profile", PROFILE, "--profiles-dir", str(PROFILES), "--sandbox",
                "-o", str(out))
    assert built.returncode == 0, built.stderr
    state = lab.state
    assert state is not None
    lab_registry = state.services[services.REGISTRY]
    processes.terminate(lab_registry.pid, lab_registry.started)
    probe = lab.ssh(HOST, "python3 -c 'import urllib.request as u; "
                          f"u.urlopen(\"{lab_registry.url}/v2/\", timeout=5)'")
    assert probe.returncode != 0 and "Connection refused" in probe.stderr, probe.stderr
    return out


@pytest.fixture(scope="module")
def image(bundle: Path) -> ImageEntry:
    (entry,) = load_manifest(bundle).images
    return entry


def test_the_bundle_holds_the_lab_image_as_pinned(lab: Lab, bundle: Path, image: ImageEntry) -> None:
    assert image.reference == services.image_pin(lab)
    assert image.manifest_digest == image.reference.rpartition("@")[2]
    listed = load_manifest(bundle).file(image.path)
    assert listed.kind == "container-image"
    print(f"\nimage archive {image.path}: {listed.size / 2**20:.1f} MiB")


def test_a_tampered_image_archive_stops_apply_before_the_host_changes(lab: Lab, bundle: Path, image: ImageEntry,
                                                                      workdir: Path) -> None:
    tampered = workdir / "tampered"
    subprocess.run(["cp", "-a", str(bundle), str(tampered)], check=True)
    with open(tampered / image.path, "r+b") as handle:
        handle.seek(-4096, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-4096, os.SEEK_END)
        handle.write(bytes([byte[0] ^ 0xFF]))
    runs = workdir / "runs-refused"
    code, _, stderr = apply(lab, runs, tampered)
    assert code == 1 and f"{image.path}: sha256 differs" in " ".join(stderr.split()), stderr
    assert not runs.exists()  # stopped before a run directory, so before any host
    assert lab.ssh(HOST, UNTOUCHED).stdout.strip() == ""


@pytest.fixture(scope="module")
def runs(lab: Lab, bundle: Path, workdir: Path) -> list[dict[str, Any]]:
    """The first apply and its rerun (after the tampered-bundle test, which must find the host bare)."""
    documents, seconds = [], []
    for _ in range(2):
        started = time.monotonic()
        code, document, stderr = apply(lab, workdir / "runs", bundle)
        seconds.append(time.monotonic() - started)
        assert code == 0, stderr + json.dumps(document.get("hosts"), indent=1)
        documents.append(document)
    print(f"\napply --bundle (docker) seconds: first {seconds[0]:.1f}, rerun {seconds[1]:.1f}")
    return documents


def _inspect(lab: Lab, what: str, kind: str = "container", name: str = "ollama") -> Any:
    proc = lab.ssh(HOST, f"docker {kind} inspect {name} --format '{{{{json {what}}}}}'")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_container_runs_the_loaded_image_with_the_gpu(lab: Lab, image: ImageEntry,
                                                          runs: list[dict[str, Any]]) -> None:
    first = runs[0]
    assert ran(first["run_dir"], STREAM) >= 1 and ran(first["run_dir"], LOAD) == 1
    assert ran(first["run_dir"], PULL) == 0
    assert _inspect(lab, ".Image") == image.image_id == _inspect(lab, ".Config.Image")
    assert _inspect(lab, ".RepoDigests", "image", image.image_id) == []  # loaded: no digest to match the pin
    assert [r["Capabilities"] for r in _inspect(lab, ".HostConfig.DeviceRequests")] == [[["gpu"]]]
    assert "OLLAMA_NO_CLOUD=1" in _inspect(lab, ".Config.Env")  # air-gapped: cloud features off, as native
    archives = lab.ssh(HOST, "find /var/cache/coderig /var/lib/coderig/bundle/images -type f -name '*.tar*' "
                             "-printf '%f\\n' 2>/dev/null; true").stdout.split()
    assert archives == [image.path.rpartition("/")[2]]  # the image came, the release archive did not
    smi = lab.ssh(HOST, "docker exec ollama nvidia-smi -L")
    assert smi.returncode == 0 and "NVIDIA GeForce RTX 4070" in smi.stdout, smi.stderr
    report = json.loads((Path(first["run_dir"]) / "report.json").read_text())
    (host,) = report["hosts"]
    checks = {c["name"]: c["status"] for c in host["checks"]}
    assert host["verdict"] == "pass" and checks["gpu_offload"] == "pass", checks
    # apply read the container through the SDK: the loaded ID is the pin's, bound through the bundle
    assert checks["container_image_digest"] == "pass" and checks["container_gpu_request"] == "pass", checks


def test_a_rerun_neither_copies_nor_loads_and_changes_nothing(runs: list[dict[str, Any]]) -> None:
    rerun = runs[1]
    assert [(h["host"], h["status"], h["changed"]) for h in rerun["hosts"]] == [(HOST, "ok", 0)]
    assert ran(rerun["run_dir"], STREAM) == 0 and ran(rerun["run_dir"], LOAD) == 0


def _digest_check(lab: Lab, *args: str) -> tuple[int, str]:
    proc = cli(lab, "verify", "--json", "--profile", PROFILE, "--profiles-dir", str(PROFILES), "--sandbox", *args)
    assert proc.stdout.startswith("{"), proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    return proc.returncode, next(c["status"] for c in host["checks"] if c["name"] == "container_image_digest")


def test_verify_binds_the_loaded_image_to_the_pin_through_the_bundle(lab: Lab, bundle: Path,
                                                                     runs: list[dict[str, Any]]) -> None:
    assert _digest_check(lab, "--bundle", str(bundle)) == (0, "pass")
    assert _digest_check(lab) == (1, "fail")  # without the bundle, nothing says which ID the pin loads as


def test_validate_airgapped_reads_the_containers_environment(lab: Lab, bundle: Path,
                                                            runs: list[dict[str, Any]], workdir: Path) -> None:
    """The auditor's command on a docker host: Ollama's process is the container's main one."""
    proc = cli(lab, "validate", "--airgapped", "--sandbox", "--bundle", str(bundle), "--runs-dir",
               str(workdir / "validate"), "--json")
    assert proc.stdout.strip().startswith("{"), proc.stderr
    (host,) = json.loads(proc.stdout)["hosts"]
    checks = {c["name"]: c for c in host["checks"]}
    assert checks["ollama_no_cloud"]["status"] == "pass", checks["ollama_no_cloud"]
    assert "in its container" in checks["ollama_no_cloud"]["reason"]
    assert all(checks[n]["status"] == "pass" for n in ("no_default_route", "no_public_connection", "model_digest")), \
        checks
    assert proc.returncode == 0, json.dumps(host["checks"], indent=1)[:3000]


def test_the_site_registry_serves_the_image_by_the_same_digest(lab: Lab, bundle: Path, image: ImageEntry,
                                                                runs: list[dict[str, Any]], workdir: Path) -> None:
    """`bundle push` into a site registry standing where the lab's was (Docker on the host trusts that
    address), then the host's dockerd pulls the pin from it: the same image ID, now with its RepoDigest."""
    site = registry.start(workdir / "site-registry", lab.bridge_ip, services.REGISTRY_PORT)
    try:
        pushed = cli(lab, "bundle", "push", str(bundle), "--registry", site.address, "--json")
        assert pushed.returncode == 0, pushed.stderr
        (entry,) = [e for e in json.loads(pushed.stdout) if "image_id" in e]
        assert entry["reference"] == f"{site.address}/{image.reference.split('/', 1)[1]}"
        pulled = lab.ssh(HOST, f"docker pull {entry['reference']} && docker image inspect {entry['reference']} "
                               "--format '{{.Id}} {{json .RepoDigests}}'")
        assert pulled.returncode == 0, pulled.stderr
        image_id, digests = pulled.stdout.strip().splitlines()[-1].split(" ", 1)
        assert image_id == image.image_id and entry["reference"] in json.loads(digests)
    finally:
        stop_pid(site.pid)
