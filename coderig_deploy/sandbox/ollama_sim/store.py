"""The real Ollama model store: ``manifests/<host>/<ns>/<model>/<tag>`` and
``blobs/sha256-<hex>`` under OLLAMA_MODELS (ollama.md, Model store)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from . import gguf
from .names import ModelName, parse

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MODEL = "application/vnd.ollama.image.model"
LAYER_TEMPLATE = "application/vnd.ollama.image.template"
LAYER_PARAMS = "application/vnd.ollama.image.params"
LAYER_LICENSE = "application/vnd.ollama.image.license"
LAYER_SYSTEM = "application/vnd.ollama.image.system"
SIM_FILE_SIZE_KEY = "coderig.sim.file_size"

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")


class StoreError(Exception):
    """A store operation failed; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


def digest_hex(digest: str) -> str:
    match = _DIGEST.match(digest)
    if not match:
        raise StoreError(f"invalid digest format {digest!r}", 400)
    return match.group(1)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Model:
    """A manifest read from the store, with what its layers say."""

    name: ModelName
    manifest: dict[str, Any]
    digest: str  # sha256 hex of the manifest bytes, as /api/tags shows it
    modified_at: float
    model_info: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    system: str = ""
    license: str = ""

    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers", []))

    def layer(self, media_type: str) -> dict[str, Any] | None:
        return next((lay for lay in self.layers() if lay.get("mediaType") == media_type), None)

    def weights_bytes(self) -> int:
        """Bytes of the GGUF file the model layer stands for (real size if simulated)."""
        layer = self.layer(LAYER_MODEL)
        stored = int(layer["size"]) if layer else 0
        return int(self.model_info.get(SIM_FILE_SIZE_KEY, stored))

    def size(self) -> int:
        """What /api/tags reports: all layers, the model layer at its real size."""
        others = sum(int(lay["size"]) for lay in self.layers() if lay.get("mediaType") != LAYER_MODEL)
        return self.weights_bytes() + others


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.manifests = self.root / "manifests"

    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.manifests.mkdir(parents=True, exist_ok=True)

    # blobs ---------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / f"sha256-{digest_hex(digest)}"

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        path = self.blob_path(digest)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def write_blob(self, digest: str, stream: BinaryIO, length: int | None = None,
                   progress: Any = None) -> int:
        """Copy `stream` into the blob for `digest`, verifying the sha256 on the way."""
        expected = digest_hex(digest)
        self.ensure()
        hasher = hashlib.sha256()
        written = 0
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=f"sha256-{expected}-partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                while length is None or written < length:
                    want = 1 << 20 if length is None else min(1 << 20, length - written)
                    chunk = stream.read(want)
                    if not chunk:
                        break
                    out.write(chunk)
                    hasher.update(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(written)
            if length is not None and written != length:
                raise StoreError(f"short read for {digest}: {written} of {length} bytes", 400)
            if hasher.hexdigest() != expected:
                raise StoreError(f"digest mismatch, file must be downloaded again: want sha256:{expected}, got sha256:{hasher.hexdigest()}", 400)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.blob_path(digest))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return written

    def put_bytes(self, data: bytes) -> dict[str, Any]:
        """Store `data` as a blob; return its descriptor fields (digest, size)."""
        digest = sha256_digest(data)
        if not self.has_blob(digest, len(data)):
            import io
            self.write_blob(digest, io.BytesIO(data), len(data))
        return {"digest": digest, "size": len(data)}

    def verify_blob(self, digest: str) -> bool:
        hasher = hashlib.sha256()
        with open(self.blob_path(digest), "rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                hasher.update(chunk)
        return hasher.hexdigest() == digest_hex(digest)

    # manifests -----------------------------------------------------------
    def manifest_path(self, name: ModelName) -> Path:
        return self.manifests.joinpath(*name.manifest_parts())

    def write_manifest(self, name: ModelName, raw: bytes) -> None:
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    def names(self) -> Iterator[ModelName]:
        if not self.manifests.is_dir():
            return
        for path in sorted(self.manifests.glob("*/*/*/*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                host, ns, model, tag = path.relative_to(self.manifests).parts
                yield ModelName(host, ns, model, tag)

    def get(self, name: ModelName | str) -> Model | None:
        name = parse(name) if isinstance(name, str) else name
        path = self.manifest_path(name)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        model = Model(name, json.loads(raw), hashlib.sha256(raw).hexdigest(), path.stat().st_mtime)
        self._read_layers(model)
        return model

    def _read_layers(self, model: Model) -> None:
        for layer in model.layers():
            kind, path = layer.get("mediaType"), self.blob_path(layer["digest"])
            if not path.is_file():
                continue
            if kind == LAYER_MODEL:
                try:
                    model.model_info = gguf.read_model_info(str(path))
                except gguf.GGUFError:
                    model.model_info = {}
            elif kind == LAYER_PARAMS:
                model.params = json.loads(path.read_text() or "{}")
            elif kind == LAYER_TEMPLATE:
                model.template = path.read_text()
            elif kind == LAYER_SYSTEM:
                model.system = path.read_text()
            elif kind == LAYER_LICENSE:
                model.license = path.read_text()

    def delete(self, name: ModelName) -> None:
        path = self.manifest_path(name)
        if not path.is_file():
            raise StoreError(f"model '{name.display()}' not found", 404)
        path.unlink()
        for parent in (path.parent, path.parent.parent, path.parent.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break

    def referenced(self) -> set[str]:
        used: set[str] = set()
        for name in self.names():
            model = self.get(name)
            if model is None:
                continue
            config = model.manifest.get("config") or {}
            for desc in [config, *model.layers()]:
                if desc.get("digest"):
                    used.add(digest_hex(desc["digest"]))
        return used

    def prune(self, min_age: float = 0.0) -> list[str]:
        """Delete blobs no manifest references (older than `min_age` s); return their names."""
        import time
        used = self.referenced()
        removed = []
        now = time.time()
        for path in sorted(self.blobs.glob("sha256-*")) if self.blobs.is_dir() else []:
            hexpart = path.name[len("sha256-"):]
            if hexpart not in used and now - path.stat().st_mtime >= min_age:
                path.unlink()
                removed.append(path.name)
        return removed
