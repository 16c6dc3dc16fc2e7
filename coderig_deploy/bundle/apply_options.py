"""`apply --bundle DIR`: verify the bundle on the controller, then point the render options at it.

Nothing reaches a host before this returns: a bundle that does not verify (a
missing, extra or altered file, or a bad signature when allowed signers are
given) raises BundleInvalid (exit 1) naming the file; a bundle without the
profile's pieces, or options that name another source, are bad input (exit 2).
"""

from __future__ import annotations

from pathlib import Path

from coderig_deploy.bundle.image import check_archive
from coderig_deploy.bundle.install import HOST_APT_DIR, install_plan
from coderig_deploy.bundle.verify import load_verified
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import Profile
from coderig_deploy.project import RenderOptions

CONFLICTING = ("--ollama-url", "--ollama-sha256", "--model-registry", "--model-digest")


def refuse_other_sources(given: dict[str, object]) -> None:
    """--bundle is the one source: options naming another are refused (exit 2)."""
    named = [flag for flag in CONFLICTING if given.get(flag) is not None]
    if named:
        raise UserInputError(f"--bundle installs the bundle's archive and model; drop {', '.join(named)}")


def with_bundle(options: RenderOptions, directory: Path, allowed_signers: Path | None,
                profile: Profile) -> RenderOptions:
    """`options` installing from the verified bundle at `directory` (every file hashed here first)."""
    if allowed_signers is not None and not allowed_signers.is_file():
        raise UserInputError(f"--allowed-signers {allowed_signers}: no such file")
    manifest = load_verified(directory, allowed_signers, full=True)
    install = install_plan(directory, manifest, profile, options.ollama_image)
    if install.image is not None and install.image_reference is not None:
        entry = next(i for i in manifest.images if i.reference == install.image_reference)
        check_archive(directory / install.image.src, entry, install.image_reference.rpartition("@")[2])
    driver = {"driver_local_repo": f"file:{HOST_APT_DIR}"} if install.apt else {}
    image = {"ollama_image": install.image_reference} if install.image_reference else {}
    return options.model_copy(update={
        **driver,  # the driver from the bundle's apt repository, copied to the host first
        **image,  # loaded from the bundle's archive, never pulled
        "bundle": install,
        "model_registry": None,  # the model is copied into the store, never pulled
        "model_manifest_digest": install.manifest_digest,
        "ollama_archive_url": None,  # the archive is placed where the ollama role finds it
        "ollama_archive_checksum": f"sha256:{install.archive.sha256}",
    })
