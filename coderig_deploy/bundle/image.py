"""The Ollama container image of a bundle (`ollama.runtime: docker`), as one archive.

    images/sha256-<manifest hex>.tar   `docker save` format (manifest.json) and an OCI
                                       image layout (oci-layout, index.json) in one tar

Fetched by digest over the OCI distribution API (bundle/oci.py): the manifest's own
sha256 must be the pin (a manifest list or OCI index is followed to its linux/amd64
manifest, whose digest the list names), every blob's sha256 the manifest's.
Why the docker-save format: the hosts run Debian's docker.io 20.10, whose `docker load`
reads only manifest.json (OCI layouts load from Docker 25 on); the OCI files beside it
cost a few hundred bytes and let newer tools read the same archive.

A loaded image has no RepoDigest, so a host cannot be asked for `name@<pin>`. Its image
ID is the sha256 of its config, which the pinned manifest names, and dockerd checks
every layer against the config's diff_ids while loading: the ID is bound to the pin by
that chain, and it is what the container_runtime role runs and verify checks.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coderig_deploy.bundle import oci
from coderig_deploy.bundle.download import PARTIAL_DIR
from coderig_deploy.bundle.files import BundleWriteError, Progress, publish, require_space
from coderig_deploy.bundle.manifest import ImageEntry
from coderig_deploy.bundle.models import ModelSourceError, layers_of
from coderig_deploy.bundle.verify import BundleInvalid
from coderig_deploy.errors import UserInputError

IMAGES_DIR = "images"
LISTS = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
ACCEPT = f"{oci.ACCEPT}, {', '.join(LISTS)}"
PLATFORM = {"os": "linux", "architecture": "amd64"}
DOCKER_HUB = "registry-1.docker.io"
_REFERENCE = re.compile(r"^(?P<host>[a-z0-9][a-z0-9.\-]*(:[0-9]{1,5})?)/(?P<path>[a-z0-9][a-z0-9._\-/]*)"
                        r"@(?P<digest>sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class Reference:
    host: str
    repository: str
    digest: str

    def base(self, plain_http: bool) -> str:
        """The registry's API base: Docker Hub under its API host; plain HTTP only for a trusted lab."""
        host = DOCKER_HUB if self.host == "docker.io" else self.host
        return f"{'http' if plain_http else 'https'}://{host}"


def parse_reference(image: str) -> Reference:
    """`host[:port]/path@sha256:<hex>` (the profiles' SAFE_IMAGE); exit 2 on anything else."""
    match = _REFERENCE.match(image)
    if not match:
        raise UserInputError(f"image {image!r}: expected HOST[:PORT]/PATH@sha256:<64 hex> (pinned by digest)")
    path = match["path"]
    if match["host"] == "docker.io" and "/" not in path:  # Docker Hub's official images
        path = f"library/{path}"
    return Reference(match["host"], path, match["digest"])


def archive_relpath(digest: str) -> str:
    return f"{IMAGES_DIR}/sha256-{digest.removeprefix('sha256:')}.tar"


def _amd64(listing: bytes) -> list[str]:
    """The digests a manifest list or OCI index names for linux/amd64."""
    entries = [m for m in json.loads(listing).get("manifests") or [] if isinstance(m, dict)]
    return [str(m.get("digest")) for m in entries
            if all((m.get("platform") or {}).get(k) == v for k, v in PLATFORM.items())]


def _platform_manifest(base: str, ref: Reference, data: bytes, media: str) -> tuple[bytes, str | None]:
    """The image manifest itself; for a list or index, its linux/amd64 entry fetched and checked."""
    try:
        document = json.loads(data)
        if not (media in LISTS or document.get("mediaType") in LISTS):
            return data, None
        chosen = next(iter(_amd64(data)), "")
    except (ValueError, AttributeError):
        raise ModelSourceError(f"{ref.host}/{ref.repository}@{ref.digest}: the manifest is not JSON") from None
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", chosen):
        raise ModelSourceError(f"{ref.host}/{ref.repository}@{ref.digest}: no linux/amd64 image in the list")
    body, digest, _ = oci.get_manifest(base, ref.repository, chosen, ACCEPT)
    if digest != chosen:
        raise ModelSourceError(f"{ref.repository}: the list names {chosen}, the registry served {digest}")
    return body, digest


def fetch(bundle: Path, image: str, plain_http: bool, progress: Progress | None = None) -> ImageEntry:
    """Fetch the pinned `image` and write its archive into the bundle; every digest is checked."""
    ref = parse_reference(image)
    base = ref.base(plain_http)
    data, digest, media = oci.get_manifest(base, ref.repository, ref.digest, ACCEPT)
    if digest != ref.digest:
        raise ModelSourceError(f"{image}: the registry served a manifest with digest {digest}, not the pin")
    manifest, platform_digest = _platform_manifest(base, ref, data, media)
    entries = layers_of(manifest, f"{base}/v2/{ref.repository}/manifests/{ref.digest}")  # config first
    require_space(bundle, 2 * sum(e["size"] for e in entries), f"image {image}")
    blobs = bundle / PARTIAL_DIR / "image-blobs"
    for layer in entries:
        oci.get_blob(base, ref.repository, layer["digest"], blobs / layer["digest"].removeprefix("sha256:"),
                     bundle / PARTIAL_DIR, layer["size"], progress)
    relpath = archive_relpath(ref.digest)
    tag = f"{ref.host}/{ref.repository}:pinned-{ref.digest.removeprefix('sha256:')[:12]}"
    write_archive(bundle / relpath, manifest, blobs, tag, data if platform_digest else None)
    shutil.rmtree(blobs, ignore_errors=True)
    return ImageEntry(reference=image, manifest_digest=ref.digest, platform_manifest_digest=platform_digest,
                      image_id=entries[0]["digest"], path=relpath, source=f"{base}/v2/{ref.repository}")


def _entry(tar: tarfile.TarFile, name: str, size: int, handle: Any, directory: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.size, info.mode = size, 0o644
    tar.addfile(info, handle)


def write_archive(final: Path, manifest: bytes, blobs: Path, tag: str, listing: bytes | None = None) -> None:
    """A deterministic tar (same inputs, same bytes): both formats over one blobs/sha256/ tree;
    a pinned list's own bytes ride along, so the archive alone ties the image to the pin."""
    config, *layers = layers_of(manifest, str(final))
    manifest_hex = hashlib.sha256(manifest).hexdigest()
    docker = [{"Config": f"blobs/sha256/{config['digest'][7:]}", "RepoTags": [tag],
               "Layers": [f"blobs/sha256/{lay['digest'][7:]}" for lay in layers]}]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": json.loads(manifest).get("mediaType", oci.OLLAMA_MANIFEST),
                            "digest": f"sha256:{manifest_hex}", "size": len(manifest),
                            "annotations": {"io.containerd.image.name": tag.split("/", 1)[-1]}}]}
    small = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode(),
             "manifest.json": json.dumps(docker).encode(), f"blobs/sha256/{manifest_hex}": manifest}
    if listing is not None:
        small[f"blobs/sha256/{hashlib.sha256(listing).hexdigest()}"] = listing
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp")
    try:
        with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as tar:
            _entry(tar, "blobs", 0, None, directory=True)
            _entry(tar, "blobs/sha256", 0, None, directory=True)
            for name, body in sorted(small.items()):
                _entry(tar, name, len(body), io.BytesIO(body))
            for blob in sorted({lay["digest"][7:] for lay in (config, *layers)}):
                path = blobs / blob
                with open(path, "rb") as handle:
                    _entry(tar, f"blobs/sha256/{blob}", path.stat().st_size, handle)
        publish(temporary, final)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise BundleWriteError(f"{final}: cannot write the image archive: {exc.strerror}") from None


def check_archive(archive: Path, entry: ImageEntry, pin: str) -> None:
    """Tie the archive to the user's pin without taking bundle.json's word for it: the blob
    named by the pin hashes to it, names (through a list: its linux/amd64 entry) a manifest
    whose config is `entry.image_id`, and manifest.json loads that config and those layers.
    dockerd then checks the layers against the config's diff_ids, the role the image ID."""
    where = f"{archive.name} ({pin})"
    try:
        with tarfile.open(archive) as tar:
            def blob(digest: str) -> bytes:
                handle = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
                data = handle.read() if handle else b""
                if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                    raise BundleInvalid(f"{where}: blob {digest} is missing or altered")
                return data

            manifest = blob(pin)
            if entry.platform_manifest_digest is not None:
                if entry.platform_manifest_digest not in _amd64(manifest):
                    raise BundleInvalid(f"{where}: the list does not name {entry.platform_manifest_digest}")
                manifest = blob(entry.platform_manifest_digest)
            config, *layers = layers_of(manifest, where)
            handle = tar.extractfile("manifest.json")
            loads = json.loads(handle.read() if handle else b"[]")
    except (tarfile.TarError, KeyError, ValueError, ModelSourceError) as exc:
        raise BundleInvalid(f"{where}: not the pinned image's archive: {exc}") from None
    expected = [{"Config": f"blobs/sha256/{config['digest'][7:]}",
                 "Layers": [f"blobs/sha256/{lay['digest'][7:]}" for lay in layers]}]
    if config["digest"] != entry.image_id or [{k: m.get(k) for k in ("Config", "Layers")} for m in loads] != expected:
        raise BundleInvalid(f"{where}: the pinned manifest names config {config['digest']} and its layers, "
                            f"but the archive loads {loads!r:.200} as {entry.image_id}")
