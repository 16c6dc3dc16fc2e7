"""The lab's artifact server: Python's own `http.server`, detached, bound on the
bridge address, serving the simulator release (archive + sha256sum.txt) so that
installing Ollama on a sandbox host is a real download-verify-unpack."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem


@dataclass(frozen=True)
class ArtifactServer:
    pid: int
    url: str
    root: Path


def start(root: Path, host: str, port: int, timeout: float = 10.0) -> ArtifactServer:
    """Serve `root` read-only over HTTP on host:port in its own session."""
    root.mkdir(parents=True, exist_ok=True)
    log = open(root.parent / "artifacts.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", host, "--directory", str(root)],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    log.close()
    server = ArtifactServer(process.pid, f"http://{host}:{port}", root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EnvironmentProblem(f"artifact server on {host}:{port} exited with {process.returncode} "
                                     f"(see {root.parent / 'artifacts.log'})")
        try:
            with urllib.request.urlopen(server.url + "/", timeout=1):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    process.terminate()
    raise EnvironmentProblem(f"artifact server did not answer on {server.url} within {timeout:.0f} s")
