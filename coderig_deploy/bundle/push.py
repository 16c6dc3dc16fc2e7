"""`bundle push`: the bundle's models into a site's OCI registry, so a fleet pulls
from it. Blobs first (skipped when the registry has them), each manifest last;
the manifest digests returned are what profiles pin (model.manifest_digest)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from coderig_deploy.bundle import oci
from coderig_deploy.bundle.files import Progress
from coderig_deploy.bundle.verify import load_verified


class PushedModel(BaseModel):
    name: str
    reference: str  # what hosts pull: host:port/namespace/model:tag
    manifest_digest: str
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
