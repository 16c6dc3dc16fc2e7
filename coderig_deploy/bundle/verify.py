"""Check a bundle directory against its bundle.json (and its signature).

    result = verify_bundle(Path("bundle"), allowed_signers=Path("signers"))
    result.ok, result.problems          # each problem names a file
    manifest = load_verified(Path("bundle"))   # for installers: raises unless clean

`full=False` compares sizes only (a quick look before a long copy); `full=True`
also hashes every file. A missing, extra or altered file is a problem; so is a
signature that is missing (when signers are given) or does not match.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from coderig_deploy.bundle import sign
from coderig_deploy.bundle.files import sha256_file
from coderig_deploy.bundle.manifest import MANIFEST_NAME, SIGNATURE_NAME, BundleFile, BundleManifest, load_manifest
from coderig_deploy.errors import RunFailed

Problem = Literal["missing", "extra", "not a regular file", "size differs", "sha256 differs", "signature"]


class BundleProblem(BaseModel):
    path: str
    problem: Problem
    detail: str = ""


class VerifyResult(BaseModel):
    directory: str
    files: int
    bytes: int
    hashed: bool
    signed_by: str | None = None
    signature_checked: bool = False
    problems: list[BundleProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


class BundleInvalid(RunFailed):
    """A bundle that does not match its bundle.json or its signature (exit 1)."""


def _present(directory: Path) -> set[str]:
    found: set[str] = set()
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in names:
            found.add(Path(root, name).relative_to(directory).as_posix())
    return found - {MANIFEST_NAME, SIGNATURE_NAME}


def check_file(directory: Path, entry: BundleFile, full: bool = True) -> BundleProblem | None:
    """The problem of one listed file, or None: missing, not a regular file, size, sha256 (when `full`)."""
    path = directory / entry.path
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return BundleProblem(path=entry.path, problem="not a regular file",
                             detail="a bundle holds plain files only (no links)")
    if not path.is_file():
        return BundleProblem(path=entry.path, problem="missing")
    size = path.stat().st_size
    if size != entry.size:
        return BundleProblem(path=entry.path, problem="size differs",
                             detail=f"{size} bytes, bundle.json says {entry.size}")
    if full and (got := sha256_file(path)) != entry.sha256:
        return BundleProblem(path=entry.path, problem="sha256 differs",
                             detail=f"{got}, bundle.json says {entry.sha256}")
    return None


def check_files(directory: Path, manifest: BundleManifest, full: bool = True) -> list[BundleProblem]:
    """Problems of the files against the manifest: missing, extra, altered (size, or sha256 when `full`)."""
    problems = [p for entry in manifest.files if (p := check_file(directory, entry, full)) is not None]
    listed = {entry.path for entry in manifest.files}
    problems += [BundleProblem(path=path, problem="extra", detail="not listed in bundle.json")
                 for path in sorted(_present(directory) - listed)]
    return problems


def verify_bundle(directory: Path, allowed_signers: Path | None = None, full: bool = True) -> VerifyResult:
    """Load bundle.json (exit-2 error when malformed) and check every file and the signature."""
    manifest = load_manifest(directory)
    problems = check_files(directory, manifest, full)
    signed_by = None
    if allowed_signers is not None:
        try:
            signed_by = sign.verify(directory / MANIFEST_NAME, directory / SIGNATURE_NAME, allowed_signers)
        except sign.SignatureError as exc:
            problems.insert(0, BundleProblem(path=SIGNATURE_NAME, problem="signature",
                                             detail=str(exc).removeprefix(f"{SIGNATURE_NAME}: ")))
    return VerifyResult(directory=str(directory), files=len(manifest.files),
                        bytes=sum(f.size for f in manifest.files), hashed=full, signed_by=signed_by,
                        signature_checked=allowed_signers is not None, problems=problems)


def load_verified(directory: Path, allowed_signers: Path | None = None, full: bool = True) -> BundleManifest:
    """The manifest of a bundle that verifies; BundleInvalid naming the first problems and why otherwise."""
    result = verify_bundle(directory, allowed_signers, full)
    if not result.ok:
        named = "; ".join(f"{p.path}: {p.problem}" + (f" ({p.detail})" if p.detail else "")
                          for p in result.problems[:3])
        more = f" (and {len(result.problems) - 3} more)" if len(result.problems) > 3 else ""
        raise BundleInvalid(f"bundle {directory} does not verify: {named}{more}")
    return load_manifest(directory)
