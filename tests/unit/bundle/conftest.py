"""Fixtures for bundle tests: a Range-capable HTTP server, an Ollama model store
holding a synthetic catalog model, an Ollama release, dummy .debs, SSH keys."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.profiles import load_profile
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.synthetic_models import build

TAG = "qwen2.5-coder:14b-instruct-q4_K_M"  # what budget-4070 serves
VERSION = load_profile("budget-4070").ollama.version  # budget-4070's Ollama


@dataclass
class RangeServer:
    """Serves `root`; honours `Range: bytes=N-`; can cut a response after `cut_after` bytes."""

    root: Path
    url: str = ""
    cut_after: int | None = None
    ignore_range: bool = False
    stall_after: int | None = None  # send this many bytes, then hang until `release` is set
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)


def _handler(state: RangeServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            state.requests.append((self.path, self.headers.get("Range", "")))
            path = state.root / self.path.lstrip("/")
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes=") and not state.ignore_range:
                start = int(ranged[6:].split("-")[0])
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_after is not None:
                body, state.cut_after = body[:state.cut_after], None  # one interrupted response
            if state.stall_after is not None and len(body) > state.stall_after:
                self.wfile.write(body[:state.stall_after])
                self.wfile.flush()
                state.release.wait(60)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def range_server(tmp_path: Path) -> Iterator[RangeServer]:
    state = RangeServer(root=tmp_path / "www")
    state.root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class Release:
    url: str
    sha256: str
    archive: Path


@pytest.fixture
def release(range_server: RangeServer) -> Release:
    """An Ollama-release-shaped archive (arbitrary bytes) and its sha256sum.txt."""
    directory = range_server.root / f"v{VERSION}"
    directory.mkdir()
    archive = directory / "ollama-linux-amd64.tar.zst"
    archive.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (directory / "sha256sum.txt").write_text(f"{'0' * 64}  ./ollama-linux-arm64.tar.zst\n{digest}  ./{archive.name}\n")
    return Release(f"{range_server.url}/v{VERSION}/{archive.name}", digest, archive)


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Ollama model store (manifests/ + blobs/) holding TAG as a synthetic model."""
    store = tmp_path_factory.mktemp("store")
    model = build(load_catalog().model(TAG))
    name = parse(TAG)
    manifest = store / "manifests" / name.host / name.namespace / name.model / name.tag
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(model.manifest)
    (store / "blobs").mkdir()
    for digest, data in model.blobs.items():
        (store / "blobs" / f"sha256-{digest.removeprefix('sha256:')}").write_bytes(data)
    return store


def make_deb(directory: Path, package: str, version: str) -> Path:
    """A real, installable dummy .deb built with dpkg-deb."""
    root = directory / f"{package}-build"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr" / "share" / package).mkdir(parents=True)
    (root / "usr" / "share" / package / "README").write_text(f"{package} {version}\n")
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: test <t@example.org>\n"
        f"Description: dummy {package} for bundle tests\n")
    deb = directory / f"{package}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True,
                   capture_output=True)
    subprocess.run(["rm", "-r", str(root)], check=True)
    return deb


@pytest.fixture(scope="session")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("debs")
    make_deb(directory, "nvidia-driver-dummy", "550.1-1")
    make_deb(directory, "nvidia-utils-dummy", "550.1-1")
    return directory


def make_key(directory: Path, name: str) -> tuple[Path, str]:
    """An ed25519 key pair; (private key path, public key line)."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, (directory / f"{name}.pub").read_text().strip()


def allowed_signers(path: Path, identity: str, public: str) -> Path:
    path.write_text(f"{identity} {public}\n")
    return path
