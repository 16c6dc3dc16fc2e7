"""bundle.json: what a bundle holds, every file with its size and sha256.

The manifest is the one thing a signature covers; everything else in the
bundle is checked against it. `load_manifest` reads and validates it and is the
entry point for the code that later installs from a bundle.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coderig_deploy.bundle.files import is_safe_relative
from coderig_deploy.errors import UserInputError

SCHEMA_VERSION: Literal[1] = 1
MANIFEST_NAME = "bundle.json"
SIGNATURE_NAME = "bundle.json.sig"
SHA256_HEX = r"^[0-9a-f]{64}$"
DIGEST = r"^sha256:[0-9a-f]{64}$"

FileKind = Literal["profile", "ollama-archive", "ollama-checksums", "model-manifest", "model-blob",
                   "apt-package", "apt-index", "container-image"]


class BundleFormatError(UserInputError):
    """bundle.json is missing, not JSON, or not a bundle manifest (exit 2)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative(value: str) -> str:
    if not is_safe_relative(value):
        raise ValueError(f"{value!r} is not a plain relative path inside the bundle")
    return value


class BundleFile(_Strict):
    path: str = Field(description="Path relative to the bundle directory")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_HEX)
    kind: FileKind = Field(description="What the file is")

    _path = field_validator("path")(_relative)


class ProfileEntry(_Strict):
    name: str
    path: str
    model: str = Field(description="The model tag the profile serves")
    ollama_version: str

    _path = field_validator("path")(_relative)


class OllamaEntry(_Strict):
    version: str
    path: str = Field(description="The release archive inside the bundle")
    sha256: str = Field(pattern=SHA256_HEX)
    source_url: str = Field(description="Where the archive was downloaded from")
    pinned: bool = Field(description="True when a sha256 pin was checked as well as sha256sum.txt")

    _path = field_validator("path")(_relative)


class BlobEntry(_Strict):
    digest: str = Field(pattern=DIGEST)
    size: int = Field(ge=0)
    media_type: str
    path: str

    _path = field_validator("path")(_relative)

    @model_validator(mode="after")
    def _named_by_digest(self) -> BlobEntry:
        if not self.path.endswith("sha256-" + self.digest.removeprefix("sha256:")):
            raise ValueError(f"blob path {self.path} is not named by its digest {self.digest}")
        return self


class ModelEntry(_Strict):
    name: str = Field(description="The tag as the profile writes it, e.g. qwen2.5-coder:14b-instruct-q4_K_M")
    repository: str = Field(description="OCI repository, namespace/model")
    tag: str
    manifest_path: str = Field(description="Ollama store layout: models/manifests/<host>/<ns>/<model>/<tag>")
    manifest_digest: str = Field(pattern=DIGEST, description="sha256 of the manifest bytes: the pin")
    media_type: str
    blobs: list[BlobEntry]
    source: str = Field(description="Registry URL or model store it was taken from")

    _path = field_validator("manifest_path")(_relative)


class ImageEntry(_Strict):
    reference: str = Field(description="The image as pinned, HOST/PATH@sha256:<manifest digest>")
    manifest_digest: str = Field(pattern=DIGEST, description="sha256 of the manifest (or list) bytes: the pin")
    platform_manifest_digest: str | None = Field(
        default=None, pattern=DIGEST, description="The linux/amd64 manifest the pinned list names, if a list")
    image_id: str = Field(pattern=DIGEST, description="The config's digest, which the manifest names: "
                                                      "the image ID `docker load` gives it")
    path: str = Field(description="The archive: docker save format and OCI layout in one tar")
    source: str = Field(description="Registry it was fetched from")

    _path = field_validator("path")(_relative)


class AptPackage(_Strict):
    package: str
    version: str
    architecture: str
    path: str

    _path = field_validator("path")(_relative)


class AptRepo(_Strict):
    path: str = Field(description="Directory of the flat apt repository (Packages, Release)")
    packages: list[AptPackage]

    _path = field_validator("path")(_relative)


class BundleManifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    coderig_version: str
    created: datetime
    files: list[BundleFile]
    profiles: list[ProfileEntry]
    ollama: list[OllamaEntry]
    models: list[ModelEntry]
    apt: AptRepo | None = None
    images: list[ImageEntry] = Field(default_factory=list, description="Container images (runtime docker)")

    @model_validator(mode="after")
    def _consistent(self) -> BundleManifest:
        listed = {f.path: f for f in self.files}
        if len(listed) != len(self.files):
            raise ValueError("a path is listed twice in files")
        named = [p.path for p in self.profiles] + [o.path for o in self.ollama] + \
            [m.manifest_path for m in self.models] + [b.path for m in self.models for b in m.blobs] + \
            ([p.path for p in self.apt.packages] if self.apt else []) + [i.path for i in self.images]
        missing = [path for path in named if path not in listed]
        if missing:
            raise ValueError(f"{missing[0]} is referenced but not listed in files")
        for model in self.models:
            for blob in model.blobs:
                entry = listed[blob.path]
                if "sha256:" + entry.sha256 != blob.digest or entry.size != blob.size:
                    raise ValueError(f"blob {blob.path}: files entry disagrees with its digest or size")
            if "sha256:" + listed[model.manifest_path].sha256 != model.manifest_digest:
                raise ValueError(f"{model.manifest_path}: files entry disagrees with manifest_digest")
        for archive in self.ollama:
            if listed[archive.path].sha256 != archive.sha256:
                raise ValueError(f"{archive.path}: files entry disagrees with the archive's sha256")
        return self

    def file(self, path: str) -> BundleFile:
        return next(f for f in self.files if f.path == path)

    def to_json(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=1) + "\n").encode()


def load_manifest(directory: Path) -> BundleManifest:
    """Read and validate DIR/bundle.json; one-line BundleFormatError when it is not a bundle."""
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise BundleFormatError(f"{directory}: not a directory")
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BundleFormatError(f"{path}: missing (not a bundle directory?)") from None
    except OSError as exc:
        raise BundleFormatError(f"{path}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:  # json's parser recurses per level; no manifest nests more than a few
        raise BundleFormatError(f"{path}: not a bundle manifest: nested too deeply") from None
    try:
        return BundleManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BundleFormatError(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}{more}") from None
