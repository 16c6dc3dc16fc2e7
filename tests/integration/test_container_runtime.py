"""ollama.runtime docker on real sandbox hosts (issue 12, Done when).

Two docker-capable hosts: `fresh` gets the docker profile on a new host, `switch`
first runs the native profile and then switches to docker. Docker Engine (Debian's
docker.io), the docker SDK, the registry and the image are real; the NVIDIA
Container Toolkit is the simulated GPU seam's (sandbox/container_repo.py).
How long docker runs take against native ones is measured in
benchmarks/container_vs_native.py, not here: this file does only the applies its
checks need (4, plus the switch back).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.sandbox import HostSpec, Lab, services
from tests.integration.test_apply import CLI, by_host, run_apply

pytestmark = pytest.mark.integration

PROFILES = Path(__file__).resolve().parents[1] / "unit" / "container" / "profiles"
NATIVE, DOCKER = "budget-4070", "budget-4070-docker"
FRESH, SWITCH = "fresh", "switch"


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    specs = [HostSpec(name=n, gpu="rtx-4070", count=1, docker=True) for n in (FRESH, SWITCH)]
    return sandbox_lab(specs, name="docker")


@pytest.fixture(scope="module")
def runs(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict[str, Any], float]]:
    """native on `switch`; docker on `fresh`; then `switch` to docker; then both again
    (each run's exit code, document, seconds)."""
    out = tmp_path_factory.mktemp("runs")
    native = ("--profile", NATIVE)
    docker = ("--profile", DOCKER, "--profiles-dir", str(PROFILES))
    done = {}
    for key, args, host in (("native_first", native, SWITCH), ("docker_first", docker, FRESH),
                            ("switch", docker, SWITCH), ("both_rerun", docker, None)):
        done[key] = run_apply(lab, out, *args, "--sandbox", *([host] if host else []))
    return done


def _report(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The run directory's report.json, by host (verdicts and checks)."""
    report = json.loads((Path(doc["run_dir"]) / "report.json").read_text())
    return {h["host"]: h for h in report["hosts"]}


def _inspect(lab: Lab, host: str, what: str) -> Any:
    proc = lab.ssh(host, f"docker container inspect ollama --format '{{{{json {what}}}}}'")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_run_passes_and_reruns_change_nothing(runs: dict[str, tuple[int, dict[str, Any], float]]) -> None:
    for key, (code, doc, _) in runs.items():
        assert code == 0, (key, [(h["host"], h.get("reason")) for h in doc["hosts"]])
        assert all(h["verdict"] == "pass" for h in _report(doc).values()), key
    rerun = runs["both_rerun"][1]
    assert all(h["changed"] == 0 for h in rerun["hosts"]), by_host(rerun)
    assert set(by_host(runs["both_rerun"][1])) == {FRESH, SWITCH}


def test_container_runs_the_pinned_digest_with_the_gpu(lab: Lab, runs: dict[str, Any]) -> None:
    pinned = services.image_pin(lab)
    assert pinned and "@sha256:" in pinned
    for host in (FRESH, SWITCH):
        assert _inspect(lab, host, ".Config.Image") == pinned
        requests = _inspect(lab, host, ".HostConfig.DeviceRequests")
        assert [r["Capabilities"] for r in requests] == [[["gpu"]]]
        assert _inspect(lab, host, ".NetworkSettings.Ports") == {
            "11434/tcp": [{"HostIp": "127.0.0.1", "HostPort": "11434"}]}
        # the toolkit's hook put the simulated card into the container
        smi = lab.ssh(host, "docker exec ollama nvidia-smi -L")
        assert smi.returncode == 0 and "NVIDIA GeForce RTX 4070" in smi.stdout, smi.stderr
        # the benchmark measured a model entirely on the (simulated) GPU
        checks = {c["name"]: c for c in _report(runs["both_rerun"][1])[host]["checks"]}
        assert checks["gpu_offload"]["status"] == "pass", checks["gpu_offload"]
        # apply's own report read the container through the docker SDK too
        assert {name: checks[name]["status"] for name in CONTAINER_CHECKS} == dict.fromkeys(CONTAINER_CHECKS, "pass")


def test_switching_stopped_the_native_service_and_kept_the_store(lab: Lab, runs: dict[str, Any]) -> None:
    state = lab.ssh(SWITCH, "systemctl is-enabled ollama; systemctl is-active ollama").stdout.split()
    assert state == ["disabled", "inactive"]
    store = "/usr/share/ollama/.ollama/models"
    blobs = lab.ssh(SWITCH, f"find {store} ! -user ollama | wc -l; ls {store}/blobs | wc -l").stdout.split()
    assert blobs[0] == "0" and int(blobs[1]) > 0  # still the ollama user's, the models are there


def _verify(lab: Lab) -> tuple[int, dict[str, dict[str, str]]]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, "verify", "--json", "--profile", DOCKER, "--profiles-dir", str(PROFILES),
                           "--sandbox"], env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.stdout.startswith("{"), proc.stderr
    doc = json.loads(proc.stdout)
    return proc.returncode, {h["host"]: {c["name"]: c["status"] for c in h["checks"]} for h in doc["hosts"]}


CONTAINER_CHECKS = ("container_running", "container_image_digest", "container_gpu_request", "container_env",
                    "container_port_loopback", "container_health", "container_restarts",
                    "container_restart_policy", "containers_loopback_only")


def test_verify_shows_every_container_check_and_flags_a_hand_started_exposed_one(
        lab: Lab, runs: dict[str, Any]) -> None:
    code, checks = _verify(lab)
    assert code == 0, checks
    for host in (FRESH, SWITCH):
        assert {name: checks[host][name] for name in CONTAINER_CHECKS} == dict.fromkeys(CONTAINER_CHECKS, "pass")
    image = services.image_pin(lab)
    started = lab.ssh(FRESH, f"docker rm -f ollama && docker run -d --name ollama -p 11434:11434 {image}")
    assert started.returncode == 0, started.stderr
    code, checks = _verify(lab)
    assert code == 1
    assert checks[FRESH]["container_port_loopback"] == "fail"
    assert checks[FRESH]["containers_loopback_only"] == "fail"
    assert checks[FRESH]["container_gpu_request"] == "fail"
    assert checks[SWITCH]["container_port_loopback"] == "pass"


def test_switching_back_to_native_removes_the_container_and_keeps_the_store(
        lab: Lab, runs: dict[str, Any], tmp_path: Path) -> None:
    """Runs after the verify test, which left a hand-started container on `fresh`."""
    code, doc, _ = run_apply(lab, tmp_path, "--profile", NATIVE, "--sandbox", FRESH)
    assert code == 0, [(h["host"], h.get("reason")) for h in doc["hosts"]]
    report = _report(doc)[FRESH]
    assert report["verdict"] == "pass"
    assert not [c["name"] for c in report["checks"] if c["name"].startswith("container")]  # native: none
    assert lab.ssh(FRESH, "docker ps -aq").stdout.strip() == ""
    assert lab.ssh(FRESH, "systemctl is-active ollama").stdout.strip() == "active"
