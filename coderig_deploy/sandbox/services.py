"""The lab's controller-side services, started by `sandbox up` and stopped by `down`:
the artifact server (the Ollama simulator as a release archive) and the model
registry (docker-registry seeded with a synthetic model per profile tag).

Both bind the bridge address, the only address sandbox hosts can reach.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Protocol

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import (
    artifacts,
    container_repo,
    fake_nvidia_repo,
    ollama_image,
    processes,
    registry,
)
from coderig_deploy.sandbox.ollama_sim.store import sha256_digest
from coderig_deploy.sandbox.release import ARCHIVE, build_release
from coderig_deploy.sandbox.synthetic_models import build
from coderig_deploy.sandbox.state import LabState

ARTIFACTS_PORT = 8088
REGISTRY_PORT = 5000
ARTIFACTS = "artifacts"
REGISTRY = "registry"
OLLAMA_IMAGE = "ollama-image"
PINS = "pins.json"  # beside the served tree, not in it: what the lab built, by digest


class LabLike(Protocol):
    home: Path

    @property
    def state(self) -> LabState | None: ...

    @property
    def bridge_ip(self) -> str: ...

    def register_service(self, name: str, pid: int, url: str = "") -> None: ...


def _alive(state: LabState | None, name: str) -> bool:
    service = state.services.get(name) if state else None
    return service is not None and processes.is_same_process(service.pid, service.started)


def start(lab: LabLike, tags: list[str] | None = None) -> dict[str, str]:
    """Build the release, start both servers on the bridge (unless running), seed the registry."""
    home = lab.home / "services"
    ip = lab.bridge_ip
    if not _alive(lab.state, ARTIFACTS):
        release = build_release(home / "artifacts")
        _record_pin(home / PINS, release.version, "sha256:" + release.sha256)
        repos = fake_nvidia_repo.build(home / "artifacts", home / "gnupg")
        _record(home / PINS, "apt-key", repos.fingerprint)
        server = artifacts.start(home / "artifacts", ip, ARTIFACTS_PORT)
        lab.register_service(ARTIFACTS, server.pid, server.url)
    if not _alive(lab.state, REGISTRY):
        reg = registry.start(home / "registry", ip, REGISTRY_PORT)
        lab.register_service(REGISTRY, reg.pid, reg.url)
        registry.seed(reg.url, tags if tags is not None else registry.profile_tags())
    if _wants_containers(lab) and not _recorded(home / PINS, OLLAMA_IMAGE):
        _start_containers(lab, home)
    return urls(lab)


def _wants_containers(lab: LabLike) -> bool:
    state = lab.state
    return state is not None and any(h.docker for h in state.hosts.values())


def _recorded(path: Path, name: str) -> bool:
    return path.is_file() and name in json.loads(path.read_text())


def _start_containers(lab: LabLike, home: Path) -> None:
    """Only for labs with docker hosts: Docker's .debs and the simulated toolkit as an apt
    repository, and the simulator image in the registry (its digest is the lab's pin)."""
    state = lab.state
    assert state is not None and state.rootfs is not None and REGISTRY in state.services
    container_repo.build(home / "artifacts", home / "gnupg", state.rootfs)
    image = ollama_image.build_image(state.rootfs)
    _record(home / PINS, OLLAMA_IMAGE, ollama_image.push(state.services[REGISTRY].url, image))


def stop(lab: LabLike) -> None:
    """Stop the recorded services (also safe after a crash: PIDs are checked)."""
    state = lab.state
    for service in (state.services.values() if state else []):
        if service.name in (ARTIFACTS, REGISTRY):
            processes.terminate(service.pid, service.started)


def urls(lab: LabLike) -> dict[str, str]:
    """What the provisioning needs: the release download base and the registry address."""
    state = lab.state
    services = state.services if state else {}
    out: dict[str, str] = {}
    if ARTIFACTS in services:
        out["ollama_download_base"] = f"{services[ARTIFACTS].url}/ollama/releases/download"
        out["nvidia_repo_url"] = f"{services[ARTIFACTS].url}/apt/nvidia"
        out["debian_mirror_url"] = f"{services[ARTIFACTS].url}/apt/debian"
        if _recorded(lab.home / "services" / PINS, OLLAMA_IMAGE):
            out["container_repo_url"] = f"{services[ARTIFACTS].url}/apt/containers"
    if REGISTRY in services:
        out["model_registry"] = services[REGISTRY].url.removeprefix("http://")
        image = image_pin(lab)
        if image:
            out["ollama_image"] = image
    return out


def image_pin(lab: LabLike) -> str | None:
    """`<registry>/coderig/ollama-sim@sha256:<hex>`: the simulator image the lab pushed."""
    path = lab.home / "services" / PINS
    value = json.loads(path.read_text()).get(OLLAMA_IMAGE) if path.is_file() else None
    return str(value) if value else None


def _record_pin(path: Path, version: str, digest: str) -> None:
    """Remember the digest of the archive as built, so a later change to the served copy is caught."""
    _record(path, f"ollama-{version}", digest)


def _record(path: Path, name: str, value: str) -> None:
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded[name] = value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def archive_pin(lab: LabLike, version: str) -> str | None:
    """sha256:<hex> of the release archive the lab built for `version` (None: it serves none)."""
    home = lab.home / "services"
    recorded = json.loads((home / PINS).read_text()) if (home / PINS).is_file() else {}
    if f"ollama-{version}" in recorded:
        return str(recorded[f"ollama-{version}"])
    archive = home / "artifacts" / "ollama" / "releases" / "download" / f"v{version}" / ARCHIVE
    if not archive.is_file():  # a lab from before pins were recorded: the file as it is now
        return None
    return "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()


def apt_key_pin(lab: LabLike) -> str | None:
    """Fingerprint of the key that signs the lab's fake NVIDIA and Debian apt repositories."""
    path = lab.home / "services" / PINS
    value = json.loads(path.read_text()).get("apt-key") if path.is_file() else None
    return str(value) if value else None


def manifest_pin(tag: str) -> str:
    """sha256:<hex> of the manifest the lab's registry serves for `tag` (its synthetic stand-in)."""
    return sha256_digest(build(load_catalog().model(tag)).manifest)
