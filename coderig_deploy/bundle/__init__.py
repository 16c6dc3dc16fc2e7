"""Offline bundles: build, verify, sign and push everything an air-gapped site needs.

For installers (apply --bundle, validate --airgapped):

    from coderig_deploy.bundle import load_verified, verify_bundle
    manifest = load_verified(Path("bundle"), allowed_signers=None, full=False)  # sizes only
    manifest.ollama[0].path, manifest.ollama[0].sha256
    manifest.models[0].manifest_path, manifest.models[0].manifest_digest, manifest.models[0].blobs
    manifest.apt.path if manifest.apt else None
    manifest.profiles[0].path
"""

from coderig_deploy.bundle.manifest import BundleFormatError, BundleManifest, load_manifest
from coderig_deploy.bundle.verify import BundleInvalid, VerifyResult, load_verified, verify_bundle

__all__ = ["BundleFormatError", "BundleInvalid", "BundleManifest", "VerifyResult", "load_manifest",
           "load_verified", "verify_bundle"]
