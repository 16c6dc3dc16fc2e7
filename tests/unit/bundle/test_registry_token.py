"""Pulling an image from a registry that wants a bearer token (Docker Hub's flow): a stand-in
that speaks the token protocol in front of a real docker-registry, and sends blobs to a
"CDN" on another host name that refuses any request carrying a credential."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coderig_deploy.bundle.image import fetch, parse_reference
from coderig_deploy.errors import RunFailed
from tests.integration.ollama_sim_support import free_port
from tests.unit.bundle.test_image import REPOSITORY, Pushed, _sha, pushed  # noqa: F401 (fixture)

TOKEN = "t0ken"


@dataclass
class TokenRegistry:
    """127.0.0.1:<port> is the registry and its token service; localhost:<port> its CDN."""

    upstream: str
    port: int = 0
    refuse_tokens: bool = False
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    cdn_requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    cdn_hosts: list[str] = field(default_factory=list)
    unauthorized: int = 0

    def image(self, digest: str) -> str:
        return f"127.0.0.1:{self.port}/{REPOSITORY}@{digest}"


def _handler(state: TokenRegistry) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urllib.parse.urlsplit(self.path)
            host = self.headers.get("Host", "")
            if url.path == "/token":
                state.token_requests.append(urllib.parse.parse_qs(url.query))
                if state.refuse_tokens:
                    self._send(403, b'{"errors":[{"code":"DENIED"}]}', {"Content-Type": "application/json"})
                else:
                    self._send(200, json.dumps({"token": TOKEN, "expires_in": 300}).encode(),
                               {"Content-Type": "application/json"})
                return
            if url.path.startswith("/cdn/"):
                state.cdn_requests.append((url.path, self.headers.get("Authorization")))
                state.cdn_hosts.append(host)
                if self.headers.get("Authorization") or not host.startswith("localhost"):
                    self._send(400, b"only one auth mechanism allowed", {})
                    return
                self._proxy(f"/v2/{REPOSITORY}/blobs/{url.path.removeprefix('/cdn/')}")
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                state.unauthorized += 1
                scope = f"repository:{REPOSITORY}:pull"
                challenge = (f'Bearer realm="http://127.0.0.1:{state.port}/token",service="stand-in",'
                             f'scope="{scope}"')
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
                return
            if "/blobs/" in url.path:
                digest = url.path.rsplit("/", 1)[1]
                self._send(307, b"", {"Location": f"http://localhost:{state.port}/cdn/{digest}"})
                return
            self._proxy(self.path)

        def _proxy(self, path: str) -> None:
            request = urllib.request.Request(f"http://{state.upstream}{path}",
                                             headers={"Accept": self.headers.get("Accept", "*/*")})
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
                keep = {k: v for k, v in response.headers.items()
                        if k.lower() in ("content-type", "docker-content-digest")}
            self._send(200, body, keep)

    return Handler


@pytest.fixture
def token_registry(pushed: Pushed) -> Iterator[TokenRegistry]:  # noqa: F811 (the imported fixture)
    state = TokenRegistry(upstream=pushed.address, port=free_port())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_an_image_behind_a_token_service_is_fetched_and_the_token_stays_on_its_host(
        pushed: Pushed, token_registry: TokenRegistry, tmp_path: Path) -> None:  # noqa: F811
    entry = fetch(tmp_path, token_registry.image(pushed.list_digest), plain_http=True)
    assert entry.image_id == _sha(pushed.config)
    assert (tmp_path / entry.path).is_file()
    # every request was challenged once, answered with a token for the pull scope
    assert token_registry.unauthorized >= 3  # the list, the manifest, the blobs
    assert token_registry.token_requests[0] == {"service": ["stand-in"], "scope": [f"repository:{REPOSITORY}:pull"]}
    # the config and the layer came from the CDN, which never saw the credential
    assert sorted(p for p, _ in token_registry.cdn_requests) == sorted(
        f"/cdn/{_sha(b)}" for b in (pushed.config, pushed.layer))
    assert {auth for _, auth in token_registry.cdn_requests} == {None}
    assert {host.split(":")[0] for host in token_registry.cdn_hosts} == {"localhost"}  # its own Host header


def test_a_refused_token_is_one_clear_error_and_nothing_is_written(
        pushed: Pushed, token_registry: TokenRegistry, tmp_path: Path) -> None:  # noqa: F811
    token_registry.refuse_tokens = True
    with pytest.raises(RunFailed, match=r"token service http://127\.0\.0\.1:\d+/token: HTTP 403"):
        fetch(tmp_path, token_registry.image(pushed.manifest_digest), plain_http=True)
    assert not (tmp_path / "images").exists()


def test_docker_hubs_official_images_live_under_library() -> None:
    assert parse_reference("docker.io/ubuntu@sha256:" + "0" * 64).repository == "library/ubuntu"
    assert parse_reference("docker.io/ollama/ollama@sha256:" + "0" * 64).repository == "ollama/ollama"
    assert parse_reference("registry.lan:5000/ubuntu@sha256:" + "0" * 64).repository == "ubuntu"
