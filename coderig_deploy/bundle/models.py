"""Put a model into a bundle in Ollama's own store layout, from a registry or a store.

    models/manifests/registry.ollama.ai/<ns>/<model>/<tag>   the manifest bytes as served
    models/blobs/sha256-<hex>                                  config and every layer

The manifest is stored under Ollama's default host whatever the source, so the
profile's tag names it on a host; the bytes are kept as served, so the digest
(the pin) is the same in the bundle, after a push, and on the host.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from coderig_deploy.bundle import oci
from coderig_deploy.bundle.download import PARTIAL_DIR
from coderig_deploy.bundle.files import Progress, atomic_write, publish, require_space, sha256_file
from coderig_deploy.bundle.manifest import BlobEntry, ModelEntry
from coderig_deploy.errors import RunFailed, UserInputError
from coderig_deploy.sandbox.ollama_sim.names import DEFAULT_HOST, ModelName, NameError_, parse

MODELS_DIR = "models"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ModelSourceError(RunFailed):
    """A model's manifest or blobs could not be obtained or did not verify."""


def model_name(tag: str) -> ModelName:
    try:
        return parse(tag)
    except NameError_ as exc:
        raise UserInputError(str(exc)) from None


def manifest_relpath(name: ModelName) -> str:
    return f"{MODELS_DIR}/manifests/{DEFAULT_HOST}/{name.namespace}/{name.model}/{name.tag}"


def blob_relpath(digest: str) -> str:
    return f"{MODELS_DIR}/blobs/sha256-{digest.removeprefix('sha256:')}"


def layers_of(data: bytes, where: str) -> list[dict[str, Any]]:
    """The config and layers of a manifest, each with a well-formed digest and size."""
    try:
        manifest = json.loads(data)
        entries = [manifest["config"], *manifest["layers"]]
    except (ValueError, KeyError, TypeError):
        raise ModelSourceError(f"{where}: not an image manifest (config and layers expected)") from None
    for entry in entries:
        if not isinstance(entry, dict) or not _DIGEST.match(str(entry.get("digest", ""))) \
                or not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise ModelSourceError(f"{where}: a layer without a sha256 digest and size: {entry!r:.120}")
    return entries


def check_pin(digest: str, pin: str | None, where: str) -> None:
    """The manifest must be the pinned one, before any of its blobs is fetched."""
    if pin is not None and digest != pin:
        raise ModelSourceError(f"{where}: manifest digest {digest}, but the pin is {pin}")


def from_registry(bundle: Path, tag: str, registry: str, progress: Progress | None = None,
                  pin: str | None = None) -> ModelEntry:
    """Fetch `tag` from an OCI registry into the bundle; the manifest must match `pin` when given,
    and every blob's digest is verified."""
    name, base = model_name(tag), oci.base_url(registry)
    data, digest, media = oci.get_manifest(base, name.repository(), name.tag)
    where = f"{base}/v2/{name.repository()}/manifests/{name.tag}"
    check_pin(digest, pin, where)
    layers = layers_of(data, where)
    missing = [lay for lay in layers if not _present(bundle / blob_relpath(lay["digest"]), lay["digest"])]
    require_space(bundle, sum(lay["size"] for lay in missing), f"model {tag}")
    blobs = []
    for layer in layers:
        relpath = blob_relpath(layer["digest"])
        final = bundle / relpath
        if layer in missing:
            oci.get_blob(base, name.repository(), layer["digest"], final, bundle / PARTIAL_DIR,
                         layer["size"], progress)
        blobs.append(BlobEntry(digest=layer["digest"], size=layer["size"],
                               media_type=str(layer.get("mediaType", "")), path=relpath))
    return _finish(bundle, tag, name, data, digest, media, blobs, base)


def _present(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_file(path) == digest.removeprefix("sha256:")


def from_store(bundle: Path, tag: str, store: Path, progress: Progress | None = None,
               pin: str | None = None) -> ModelEntry:
    """Copy `tag` from a local Ollama model store (manifests/ + blobs/), verifying every blob."""
    name = model_name(tag)
    manifest, data, layers = store_layers(store, tag)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    check_pin(digest, pin, str(manifest))
    blobs = []
    for layer in layers:
        relpath = blob_relpath(layer["digest"])
        _copy_verified(_store_blob(store, layer), bundle / relpath, bundle / PARTIAL_DIR, layer["digest"], progress)
        blobs.append(BlobEntry(digest=layer["digest"], size=layer["size"],
                               media_type=str(layer.get("mediaType", "")), path=relpath))
    media = str(json.loads(data).get("mediaType") or oci.OLLAMA_MANIFEST)
    return _finish(bundle, tag, name, data, digest, media, blobs, str(store))


def store_layers(store: Path, tag: str) -> tuple[Path, bytes, list[dict[str, Any]]]:
    """The manifest of `tag` in a store, its bytes and its layers, each blob present with the size
    the manifest gives (a stat, cheap enough to run before a build downloads anything; the copy is hashed)."""
    manifest = _find_store_manifest(store, model_name(tag))
    data = manifest.read_bytes()
    layers = layers_of(data, str(manifest))
    for layer in layers:
        source = _store_blob(store, layer)
        if not source.is_file():
            raise ModelSourceError(f"{source}: blob of {tag} missing from the model store")
        if (size := source.stat().st_size) != layer["size"]:
            raise ModelSourceError(f"{source}: blob of {tag} is {size} bytes, but its manifest says {layer['size']}")
    return manifest, data, layers


def _store_blob(store: Path, layer: dict[str, Any]) -> Path:
    return store / "blobs" / f"sha256-{layer['digest'].removeprefix('sha256:')}"


def _find_store_manifest(store: Path, name: ModelName) -> Path:
    if not (store / "manifests").is_dir():
        raise UserInputError(f"--from-store {store}: no manifests/ directory (not an Ollama model store)")
    hosts = [name.host] + sorted(p.name for p in (store / "manifests").iterdir() if p.name != name.host)
    for host in hosts:
        candidate = store / "manifests" / host / name.namespace / name.model / name.tag
        if candidate.is_file():
            return candidate
    raise UserInputError(f"--from-store {store}: no manifest for {name.display()} "
                         f"(looked for manifests/*/{name.namespace}/{name.model}/{name.tag})")


def _copy_verified(source: Path, final: Path, partial_dir: Path, digest: str, progress: Progress | None) -> None:
    if _present(final, digest):
        return
    partial_dir.mkdir(parents=True, exist_ok=True)
    temporary = partial_dir / final.name
    shutil.copyfile(source, temporary)
    if sha256_file(temporary) != digest.removeprefix("sha256:"):
        temporary.unlink()
        raise ModelSourceError(f"{source}: content does not match its digest {digest}")
    final.parent.mkdir(parents=True, exist_ok=True)
    publish(temporary, final)
    if progress:
        size = final.stat().st_size
        progress(final.name, size, size)


def _finish(bundle: Path, tag: str, name: ModelName, data: bytes, digest: str, media: str,
            blobs: list[BlobEntry], source: str) -> ModelEntry:
    relpath = manifest_relpath(name)
    atomic_write(bundle / relpath, data)
    return ModelEntry(name=tag, repository=name.repository(), tag=name.tag, manifest_path=relpath,
                      manifest_digest=digest, media_type=media, blobs=blobs, source=source)
