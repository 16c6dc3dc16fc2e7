"""`/api/pull`: fetch a model from a registry over the OCI distribution API.

Progress lines follow ollama.md (REST API, /api/pull): ``pulling manifest``, one
``pulling <12 hex>`` series per layer (``completed`` missing at first), ``verifying
sha256 digest``, ``writing manifest``, ``removing any unused layers``, ``success``.
``insecure`` pulls over plain http (what ``--insecure host:port/...`` does).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from .names import ModelName
from .store import MANIFEST_V2, Store, StoreError, digest_hex

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
Emit = Callable[[dict[str, Any]], None]
_PROGRESS_EVERY = 0.1  # seconds between progress lines for one layer


class PullError(Exception):
    """The pull failed; the message is what Ollama would put in {"error": ...}."""


def _base_url(name: ModelName, insecure: bool) -> str:
    return f"{'http' if insecure else 'https'}://{name.host}/v2/{name.repository()}"


def _open(url: str, accept: str | None = None, timeout: float = 30.0) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "ollama/0.33.3 (coderig-sim)"})
    if accept:
        request.add_header("Accept", accept)
    return urllib.request.urlopen(request, timeout=timeout)


def fetch_manifest(name: ModelName, insecure: bool) -> bytes:
    url = f"{_base_url(name, insecure)}/manifests/{name.tag}"
    try:
        with _open(url, accept=f"{MANIFEST_V2}, {OCI_MANIFEST}") as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise PullError("pull model manifest: file does not exist") from exc
        raise PullError(f"pull model manifest: {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PullError(f'pull model manifest: Get "{url}": {reason}') from exc


def _download(store: Store, name: ModelName, insecure: bool, layer: dict[str, Any], emit: Emit) -> None:
    digest, total = layer["digest"], int(layer["size"])
    status = f"pulling {digest_hex(digest)[:12]}"
    if store.has_blob(digest, total):
        emit({"status": status, "digest": digest, "total": total, "completed": total})
        return
    emit({"status": status, "digest": digest, "total": total})
    url = f"{_base_url(name, insecure)}/blobs/{digest}"
    last = [0.0]

    def progress(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY or done == total:
            last[0] = now
            emit({"status": status, "digest": digest, "total": total, "completed": done})

    try:
        with _open(url, timeout=60.0) as response:
            store.write_blob(digest, response, total, progress)
    except urllib.error.HTTPError as exc:
        raise PullError(f"download {digest}: {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PullError(f"download {digest}: {getattr(exc, 'reason', exc)}") from exc
    except StoreError as exc:
        raise PullError(str(exc)) from exc


def pull(store: Store, name: ModelName, insecure: bool, emit: Emit, prune: bool = True) -> None:
    """Pull `name` into `store`, calling `emit` with each progress line."""
    emit({"status": "pulling manifest"})
    raw = fetch_manifest(name, insecure)
    try:
        manifest = json.loads(raw)
        layers = [*manifest["layers"], manifest["config"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise PullError(f"pull model manifest: invalid manifest: {exc}") from exc
    old = store.get(name)
    for layer in layers:
        _download(store, name, insecure, layer, emit)
    emit({"status": "verifying sha256 digest"})
    for layer in layers:
        if not store.verify_blob(layer["digest"]):
            store.blob_path(layer["digest"]).unlink()
            raise PullError(f"digest mismatch, file must be downloaded again: {layer['digest']}")
    emit({"status": "writing manifest"})
    store.write_manifest(name, raw)
    emit({"status": "removing any unused layers"})
    if old is not None and prune:
        store.prune()
    emit({"status": "success"})
