"""A small OCI distribution API client (the parts a model mirror needs).

Pull: GET /v2/<repo>/manifests/<tag>, then GET /v2/<repo>/blobs/<digest> per
blob (digest checked while streaming, resumable). Push: HEAD a blob to skip it
when present, else POST /blobs/uploads/ and PUT ?digest= (monolithic) or PATCH
chunks then PUT (chunked); the manifest last, with its own media type.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coderig_deploy.bundle.download import DownloadError, download, fetch_bytes
from coderig_deploy.bundle.files import Progress
from coderig_deploy.errors import RunFailed, UserInputError

OLLAMA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = f"{OLLAMA_MANIFEST}, application/vnd.oci.image.manifest.v1+json"
CHUNKED_ABOVE = 64 << 20  # blobs larger than this are uploaded in chunks of this size


class RegistryError(RunFailed):
    """The registry refused or failed a request."""


def base_url(registry: str) -> str:
    """`host:port` (plain HTTP, like Ollama's insecure pulls) or a full http(s) URL."""
    text = registry.rstrip("/")
    if text.startswith(("http://", "https://")):
        return text
    if not text or "/" in text or any(c.isspace() for c in text):
        raise UserInputError(f"--registry {registry!r}: expected HOST:PORT or an http(s) URL")
    return f"http://{text}"


def get_manifest(base: str, repository: str, tag: str, accept: str = ACCEPT) -> tuple[bytes, str, str]:
    """The manifest bytes as served, their digest (checked against the registry's) and media type."""
    data, headers = fetch_bytes(f"{base}/v2/{repository}/manifests/{tag}", {"Accept": accept})
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    served = headers.get("docker-content-digest")
    if served and served != digest:
        raise DownloadError(f"{base} {repository}:{tag}: manifest digest {digest} but the registry says {served}")
    media = headers.get("content-type", OLLAMA_MANIFEST).split(";")[0].strip()
    return data, digest, media


def json_media_type(data: bytes) -> str:
    """The mediaType a manifest names itself (Docker schema 2 when it does not say)."""
    try:
        named = json.loads(data).get("mediaType")
    except (ValueError, AttributeError):
        named = None
    return str(named) if named else OLLAMA_MANIFEST


def get_blob(base: str, repository: str, digest: str, final: Path, partial_dir: Path, size: int | None,
             progress: Progress | None = None) -> None:
    download(f"{base}/v2/{repository}/blobs/{digest}", final, digest.removeprefix("sha256:"), partial_dir,
             progress, size)


@contextmanager
def _call(method: str, url: str, data: Any = None, headers: dict[str, str] | None = None,
          ok: tuple[int, ...] = (200, 201, 202, 204)) -> Iterator[Any]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            yield response
    except urllib.error.HTTPError as exc:
        if exc.code in ok:
            yield exc
            return
        body = exc.read().decode(errors="replace")[:200].strip()
        raise RegistryError(f"registry {method} {url.split('?')[0]}: HTTP {exc.code} {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"registry {method} {url.split('?')[0]}: {getattr(exc, 'reason', exc)}") from None


def has_blob(base: str, repository: str, digest: str) -> bool:
    request = urllib.request.Request(f"{base}/v2/{repository}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise RegistryError(f"registry HEAD {repository}/blobs/{digest}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RegistryError(f"registry {base}: {getattr(exc, 'reason', exc)}") from None


def _absolute(base: str, location: str) -> str:
    return urllib.parse.urljoin(base + "/", location)


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}digest={urllib.parse.quote(digest)}"


def upload_blob(base: str, repository: str, digest: str, path: Path, chunk_size: int = CHUNKED_ABOVE,
                progress: Progress | None = None) -> bool:
    """Upload a blob unless present; monolithic up to `chunk_size`, chunked above. True if uploaded."""
    if has_blob(base, repository, digest):
        return False
    size = path.stat().st_size
    with _call("POST", f"{base}/v2/{repository}/blobs/uploads/", b"") as response:
        location = _absolute(base, response.headers["Location"])
    with open(path, "rb") as handle:
        if size <= chunk_size:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            with _call("PUT", _with_digest(location, digest), handle, headers):
                pass
        else:
            offset = 0
            while chunk := handle.read(chunk_size):
                headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                           "Content-Range": f"{offset}-{offset + len(chunk) - 1}"}
                with _call("PATCH", location, chunk, headers) as response:
                    location = _absolute(base, response.headers["Location"])
                offset += len(chunk)
                if progress:
                    progress(path.name, offset, size)
            with _call("PUT", _with_digest(location, digest), b"", {"Content-Length": "0"}):
                pass
    if progress:
        progress(path.name, size, size)
    return True


def put_manifest(base: str, repository: str, tag: str, data: bytes, media_type: str) -> str:
    """PUT the manifest under `tag`; return the digest the registry reports (checked against ours)."""
    ours = "sha256:" + hashlib.sha256(data).hexdigest()
    with _call("PUT", f"{base}/v2/{repository}/manifests/{tag}", data, {"Content-Type": media_type}) as response:
        served = response.headers.get("Docker-Content-Digest")
    if served and served != ours:
        raise RegistryError(f"{repository}:{tag}: registry stored digest {served}, expected {ours}")
    return ours
