"""Helpers to run the Ollama simulator (from its release archive) and a local
docker-registry on this machine, for tests that need no sandbox host."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import registry
from coderig_deploy.sandbox.release import build_release



# The unit reference/ollama.md documents (scripts/install.sh writes it), for tests that
# install the simulator by hand instead of through the ollama role.
OLLAMA_UNIT = """[Unit]
Description=Ollama Service
After=network-online.target

[Service]
ExecStart=/usr/local/bin/ollama serve
User=ollama
Group=ollama
Restart=always
RestartSec=3

[Install]
WantedBy=default.target
"""

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unpack_release(tmp: Path) -> Path:
    """Build the release archive and unpack it into a prefix, as the ollama role does."""
    release = build_release(tmp / "artifacts")
    prefix = tmp / "prefix"
    prefix.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "--zstd", "-xf", str(release.archive), "-C", str(prefix)], check=True)
    return prefix


def gpus_document(slug: str, count: int) -> dict[str, object]:
    spec = load_catalog().gpu(slug)
    return {"driver_version": "570.133.07", "cuda_version": "12.8", "gpus": [
        {"index": i, "slug": slug, "name": spec.name, "uuid": f"GPU-test-{i}", "memory_total_mib": spec.vram_mib,
         "bandwidth_gbs": spec.bandwidth_gbs, "compute_cap": spec.compute_capability} for i in range(count)]}


@dataclass
class LocalSim:
    """`bin/ollama serve` from an unpacked release, with the seam files under `root`."""

    prefix: Path
    root: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def faults(self) -> Path:
        return self.root / "ollama-faults.json"

    @property
    def usage(self) -> Path:
        return self.root / "usage.json"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", "HOME": str(self.root), "OLLAMA_HOST": f"127.0.0.1:{self.port}",
                "OLLAMA_MODELS": str(self.models), "CODERIG_SIM_GPUS": str(self.root / "gpus.json"),
                "CODERIG_SIM_DRIVER_FILE": str(self.root / "gpus.json"),
                "CODERIG_SIM_USAGE": str(self.usage), "CODERIG_SIM_FAULTS": str(self.faults), **self.env_extra}

    def set_gpus(self, slug: str, count: int) -> None:
        (self.root / "gpus.json").write_text(json.dumps(gpus_document(slug, count)))

    def set_faults(self, **faults: object) -> None:
        self.faults.write_text(json.dumps(faults))

    def start(self) -> "LocalSim":
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "serve.log", "ab")
        self.process = subprocess.Popen([str(self.prefix / "bin" / "ollama"), "serve"], env=self.env(),
                                        stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/api/version", timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.root / "serve.log").read_text()[-2000:])
                time.sleep(0.05)
        raise RuntimeError("simulator did not start")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.prefix / "bin" / "ollama"), *args], env=self.env(),
                              capture_output=True, text=True, timeout=60, check=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_registry(tmp: Path, tags: list[str]) -> registry.RegistryProcess:
    reg = registry.start(tmp / "registry", "127.0.0.1", free_port())
    registry.seed(reg.url, tags)
    return reg


def stop_pid(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            return
        time.sleep(0.05)
