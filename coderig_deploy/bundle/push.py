"""`bundle push`: the bundle's models (and its container images) into a site's OCI
registry, so a fleet pulls from it. Blobs first (skipped when the registry has them),
each manifest last; the manifest digests returned are what profiles pin
(model.manifest_digest, ollama.image). An image goes up from its archive's blobs under
its own repository path, so `<site>/<path>@<pin>` names the same bytes the pin did
(a pinned list: the archive holds its linux/amd64 manifest, whose digest is the one
to pin at the site)."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import IO

from pydantic import BaseModel

from coderig_deploy.bundle import oci
from coderig_deploy.bundle.files import Progress
from coderig_deploy.bundle.image import parse_reference
from coderig_deploy.bundle.manifest import ImageEntry
from coderig_deploy.bundle.verify import load_verified


class PushedModel(BaseModel):
    name: str
    reference: str  # what hosts pull: host:port/namespace/model:tag
    manifest_digest: str
    blobs_uploaded: int
    blobs_present: int


class PushedImage(BaseModel):
    reference: str  # what a docker profile pins at the site: host:port/path@sha256:<hex>
    image_id: str
    blobs_uploaded: int
    blobs_present: int


def push(directory: Path, registry: str, progress: Progress | None = None,
         chunk_size: int = oci.CHUNKED_ABOVE, full: bool = True) -> list[PushedModel]:
    """Verify the bundle, then upload every model; one PushedModel per model."""
    manifest = load_verified(directory, full=full)
    base = oci.base_url(registry)
    host = base.split("://", 1)[1]
    pushed = []
    for model in manifest.models:
        uploaded = 0
        for blob in model.blobs:
            uploaded += oci.upload_blob(base, model.repository, blob.digest, directory / blob.path,
                                        chunk_size, progress)
        data = (directory / model.manifest_path).read_bytes()
        digest = oci.put_manifest(base, model.repository, model.tag, data, model.media_type)
        pushed.append(PushedModel(name=model.name, reference=f"{host}/{model.repository}:{model.tag}",
                                  manifest_digest=digest, blobs_uploaded=uploaded,
                                  blobs_present=len(model.blobs) - uploaded))
    return pushed


def push_images(directory: Path, registry: str, progress: Progress | None = None,
                full: bool = True) -> list[PushedImage]:
    """Verify the bundle, then upload every container image from its archive; one PushedImage each."""
    manifest = load_verified(directory, full=full)
    base = oci.base_url(registry)
    return [_push_image(directory, image, base, progress) for image in manifest.images]


def _push_image(directory: Path, image: ImageEntry, base: str, progress: Progress | None) -> PushedImage:
    repository = parse_reference(image.reference).repository
    digest = image.platform_manifest_digest or image.manifest_digest
    uploaded = blobs = 0
    with tempfile.TemporaryDirectory(prefix="coderig-push-") as tmp, tarfile.open(directory / image.path) as tar:
        data = _member(tar, f"blobs/sha256/{digest[7:]}").read()
        media = oci.json_media_type(data)
        for member in tar.getmembers():
            name = member.name.removeprefix("blobs/sha256/")
            if not member.isfile() or name == member.name or name in (digest[7:], image.manifest_digest[7:]):
                continue
            path = Path(tmp) / name
            path.write_bytes(_member(tar, member.name).read())
            blobs += 1
            uploaded += oci.upload_blob(base, repository, f"sha256:{name}", path, progress=progress)
            path.unlink()
        pushed = oci.put_manifest(base, repository, f"pinned-{digest[7:19]}", data, media)
    host = base.split("://", 1)[1]
    return PushedImage(reference=f"{host}/{repository}@{pushed}", image_id=image.image_id,
                       blobs_uploaded=uploaded, blobs_present=blobs - uploaded)


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    handle = tar.extractfile(name)
    assert handle is not None  # a regular file in an archive the bundle verified
    return handle
