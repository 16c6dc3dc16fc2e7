"""The lab's model registry: Debian's real `docker-registry` (distribution 2.8),
started detached on a given address with its own config and storage, and seeded
over the OCI distribution HTTP API with synthetic models (synthetic_models.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from coderig_deploy.catalog import load_catalog
from coderig_deploy.errors import EnvironmentProblem, RunFailed
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.ollama_sim.store import MANIFEST_V2
from coderig_deploy.sandbox.synthetic_models import SyntheticModel, build

BINARY = "docker-registry"
CONFIG = """version: 0.1
log:
  level: warn
  fields:
    service: coderig-sandbox-registry
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
"""


@dataclass(frozen=True)
class RegistryProcess:
    pid: int
    address: str  # host:port, what model names start with
    directory: Path

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def start(directory: Path, host: str, port: int, timeout: float = 15.0) -> RegistryProcess:
    """Start docker-registry on host:port detached (own session), storage under `directory`."""
    binary = shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if os.path.exists(f"/usr/bin/{BINARY}") else None)
    if binary is None:
        raise EnvironmentProblem("docker-registry not found: apt-get install docker-registry")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yml"
    config.write_text(CONFIG.format(storage=directory / "storage", address=f"{host}:{port}"))
    log = open(directory / "registry.log", "ab")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    log.close()
    registry = RegistryProcess(process.pid, f"{host}:{port}", directory)
    _wait_ready(registry, process, timeout)
    return registry


def _wait_ready(registry: RegistryProcess, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (registry.directory / "registry.log").read_text(errors="replace")[-800:]
            raise EnvironmentProblem(f"docker-registry exited with {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{registry.url}/v2/", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    process.terminate()
    raise EnvironmentProblem(f"docker-registry did not answer on {registry.url} within {timeout:.0f} s")


def _call(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
          ) -> urllib.response.addinfourl:  # type: ignore[name-defined]
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        return urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")[:300]
        raise RunFailed(f"registry {method} {url}: {exc.code} {body}") from exc


def push_blob(base: str, repository: str, digest: str, data: bytes) -> None:
    """Monolithic upload: POST /blobs/uploads/ then PUT <location>?digest= (skip if present)."""
    try:
        with _call("HEAD", f"{base}/v2/{repository}/blobs/{digest}"):
            return
    except RunFailed:
        pass
    with _call("POST", f"{base}/v2/{repository}/blobs/uploads/", b"") as response:
        location = response.headers["Location"]
    if location.startswith("/"):
        location = base + location
    separator = "&" if "?" in location else "?"
    with _call("PUT", f"{location}{separator}digest={digest}", data,
               {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}):
        pass


def push_model(base: str, repository: str, tag: str, model: SyntheticModel) -> None:
    for digest, data in model.blobs.items():
        push_blob(base, repository, digest, data)
    with _call("PUT", f"{base}/v2/{repository}/manifests/{tag}", model.manifest, {"Content-Type": MANIFEST_V2}):
        pass


def seed(registry_url: str, tags: Iterable[str]) -> list[str]:
    """Push a synthetic model for each catalog tag (as written and canonical); return the names."""
    catalog = load_catalog()
    pushed: list[str] = []
    for tag in sorted(set(tags)):
        choice = catalog.model(tag)
        model = build(choice)
        for spelled in dict.fromkeys([tag, choice.canonical_tag]):
            name = parse(spelled)
            push_model(registry_url, name.repository(), name.tag, model)
            pushed.append(f"{name.repository()}:{name.tag}")
    return pushed


def profile_tags() -> list[str]:
    """Every model tag a shipped profile uses."""
    from coderig_deploy import profiles

    return sorted({ref.tag for name in profiles.list_profiles() for ref in profiles.load_profile(name).all_models})


def catalog_of(registry_url: str) -> list[str]:
    with _call("GET", f"{registry_url}/v2/_catalog") as response:
        return list(json.loads(response.read())["repositories"])
