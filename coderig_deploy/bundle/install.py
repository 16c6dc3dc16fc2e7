"""What `apply --bundle` installs from a verified bundle, decided on the controller.

    install = install_plan(Path("bundle"), manifest, profile)   # UserInputError when the bundle lacks it
    install.archive, install.blobs, install.manifest

Every piece is a path in the bundle directory on the controller with its sha256 and
size: the bundle_sync role copies a piece only where it is missing and checks
its sha256 on the host before it goes under its final name. A blob's store path
is its digest, the manifest's is the profile's tag (written last).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from coderig_deploy.bundle.manifest import BundleManifest, ImageEntry
from coderig_deploy.bundle.models import MODELS_DIR
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import Profile

HOST_APT_DIR = "/var/lib/coderig/bundle/apt"  # the bundle's apt repository on a host (file: source)
HOST_IMAGE_DIR = "/var/lib/coderig/bundle/images"  # the image archive on a host, for `docker load`


def _safe_path(value: str) -> str:
    # Rendered into group_vars: a plain absolute or relative path, nothing Jinja or YAML could read.
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/@+-:")
    if not value or not set(value) <= allowed or ".." in value.split("/"):
        raise ValueError(f"{value!r} is not a plain path (letters, digits, ._/@+-:)")
    return value


PlainPath = Annotated[str, AfterValidator(_safe_path)]


class BundlePiece(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    src: PlainPath = Field(description="Path of the file relative to the bundle directory on the controller")
    dest: PlainPath = Field(description="Path relative to the destination directory on the host")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class BundleInstall(BaseModel):
    """The pieces of one profile in a verified bundle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: PlainPath = Field(description="The bundle directory on the controller (absolute)")
    ollama_version: str
    archive: BundlePiece = Field(description="dest is the archive's file name")
    blobs: list[BundlePiece] = Field(description="dest relative to the model store")
    manifest: BundlePiece = Field(description="dest relative to the model store")
    manifest_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    apt: list[BundlePiece] = Field(default_factory=list,
                                   description="The driver repository (.debs, Packages, Release); dest relative to it")
    image: BundlePiece | None = Field(default=None, description="runtime docker: the image archive; dest its name")
    image_reference: str | None = Field(default=None, description="The image as pinned (name@sha256:<manifest>)")
    image_id: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$",
                                 description="The config digest the pinned manifest names: `docker load` gives it")


def install_plan(directory: Path, manifest: BundleManifest, profile: Profile,
                 image: str | None = None) -> BundleInstall:
    """The archive of the profile's Ollama version and the profile's model, from `manifest`;
    for `runtime: docker` also the image (`image`, else the profile's pin)."""
    root = directory.resolve()
    archive = next((o for o in manifest.ollama if o.version == profile.ollama.version), None)
    if archive is None:
        held = ", ".join(o.version for o in manifest.ollama) or "none"
        raise UserInputError(f"--bundle {directory}: no Ollama {profile.ollama.version} archive for profile "
                             f"{profile.name} (the bundle holds {held}); rebuild it with --profile {profile.name}")
    model = next((m for m in manifest.models if m.name == profile.model.tag), None)
    if model is None:
        held = ", ".join(m.name for m in manifest.models) or "none"
        raise UserInputError(f"--bundle {directory}: no model {profile.model.tag} for profile {profile.name} "
                             f"(the bundle holds {held}); rebuild it with --profile {profile.name}")

    def piece(path: str, dest: str) -> BundlePiece:
        entry = manifest.file(path)
        return BundlePiece(src=path, dest=dest, sha256=entry.sha256, size=entry.size)

    loaded = bundle_image(directory, manifest, profile, image)
    in_store = len(MODELS_DIR) + 1
    apt_prefix = f"{manifest.apt.path}/" if manifest.apt else None
    apt = [piece(f.path, f.path[len(apt_prefix):]) for f in manifest.files
           if apt_prefix and f.path.startswith(apt_prefix)]
    return BundleInstall(
        directory=str(root), ollama_version=archive.version,
        archive=piece(archive.path, Path(archive.path).name),
        blobs=[piece(b.path, b.path[in_store:]) for b in model.blobs],
        manifest=piece(model.manifest_path, model.manifest_path[in_store:]),
        manifest_digest=model.manifest_digest,
        apt=apt,
        image=piece(loaded.path, Path(loaded.path).name) if loaded else None,
        image_reference=loaded.reference if loaded else None,
        image_id=loaded.image_id if loaded else None,
    )


def bundle_image(directory: Path, manifest: BundleManifest, profile: Profile, image: str | None) -> ImageEntry | None:
    if profile.ollama.runtime != "docker":
        return None
    wanted = image or profile.ollama.image
    found = next((i for i in manifest.images if i.reference == wanted), None)
    if found is None:
        held = ", ".join(i.reference for i in manifest.images) or "none"
        raise UserInputError(f"--bundle {directory}: no image {wanted} for profile {profile.name} "
                             f"(the bundle holds {held}); rebuild it with --profile {profile.name}")
    return found


def store_dirs(install: BundleInstall) -> list[str]:
    """The store directories the pieces go into, parents first (each owned by the service user)."""
    dirs = {str(parent) for piece in [*install.blobs, install.manifest]
            for parent in Path(piece.dest).parents if str(parent) != "."}
    return sorted(dirs, key=lambda d: (d.count("/"), d))
