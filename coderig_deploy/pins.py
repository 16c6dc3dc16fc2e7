"""Integrity pins: which digest each downloaded artifact is checked against, decided on the controller.

A pin is a digest that the profile, the command line or the sandbox lab vouches
for. A checksum file read from the same plain-HTTP server as the artifact is not
one: whoever can alter the archive in transit can alter its checksum too. So:

- pinned (`sha256:<hex>`, a key fingerprint): checked on the host before use;
- HTTPS without a pin: the publisher's sha256sum.txt beside the archive, as
  before (TLS authenticates the server);
- plain HTTP without a pin: refused, unless `allow_unpinned`, which the report
  then carries as a warning naming the artifact.
"""

from __future__ import annotations

from dataclasses import dataclass

from coderig_deploy.errors import UserInputError
from coderig_deploy.reports.model import CheckResult


class UnpinnedSource(UserInputError):
    """A plain-HTTP source without a pin, and no --allow-unpinned."""


@dataclass(frozen=True)
class Unpinned:
    artifact: str  # what is downloaded
    source: str  # where from
    how: str  # which pin to give, on the command line or in the profile

    @property
    def flag(self) -> str:
        return self.how.split(" or ")[0]

    @property
    def warning(self) -> str:
        return f"{self.artifact} from {self.source} is not pinned (give {self.how})"


def is_plain_http(url: str) -> bool:
    return url.startswith("http://")


def sibling_checksums(archive_url: str) -> str:
    """A mirrored release keeps Ollama's sha256sum.txt next to the archive."""
    return "sha256:" + archive_url.rsplit("/", 1)[0] + "/sha256sum.txt"


def archive_checksum(url: str | None, checksum: str | None) -> tuple[str | None, Unpinned | None]:
    """The checksum the ollama role verifies the archive with, and whether it is a pin.

    `url` None is the role's default (GitHub over HTTPS with its sha256sum.txt).
    """
    if checksum is not None and not _is_url_checksum(checksum):
        return checksum, None
    if url is None:
        return checksum, None
    checksum = checksum or sibling_checksums(url)
    if is_plain_http(url) or is_plain_http(checksum.removeprefix("sha256:")):
        return checksum, Unpinned("Ollama archive", url, "--ollama-sha256 sha256:<hex> or ollama.archive_sha256")
    return checksum, None


def manifest_digest(registry: str | None, digest: str | None) -> Unpinned | None:
    """A registry mirror is pulled from over plain HTTP (Ollama's `insecure`): it needs a pin."""
    if registry is None or digest is not None:
        return None
    return Unpinned("model manifest", f"http://{registry}", "--model-digest sha256:<hex> or model.manifest_digest")


def repo_key(key_url: str | None, fingerprint: str | None) -> Unpinned | None:
    """A local apt repository's signing key fetched over plain HTTP needs its fingerprint pinned."""
    if key_url is None or fingerprint is not None or not is_plain_http(key_url):
        return None
    return Unpinned("driver repository key", key_url, "driver.repo_key_fingerprint")


def enforce(found: list[Unpinned | None], allow_unpinned: bool) -> list[str]:
    """The warnings for the report; raises UnpinnedSource unless unpinned sources are allowed."""
    unpinned = [u for u in found if u is not None]
    if unpinned and not allow_unpinned:
        raise UnpinnedSource("; ".join(f"{u.source}: plain-HTTP {u.artifact} has no pin, give {u.flag}"
                                       for u in unpinned) + " (or --allow-unpinned)")
    return [u.warning for u in unpinned]


def _is_url_checksum(checksum: str) -> bool:
    return "://" in checksum


def unpinned_checks(warnings: list[str]) -> list[CheckResult]:
    """One `integrity` warning per host report when sources were accepted without a pin."""
    if not warnings:
        return []
    return [CheckResult(name="integrity", status="warn", source="apply", measured=warnings,
                        reason="accepted without a pin (--allow-unpinned): " + "; ".join(warnings))]
