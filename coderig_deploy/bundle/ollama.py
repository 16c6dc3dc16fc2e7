"""The Ollama release archive of a bundle, checked against the release's own
sha256sum.txt and, when given, against a pin the user brought from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from coderig_deploy.bundle.download import PARTIAL_DIR, DownloadError, download, fetch_bytes
from coderig_deploy.bundle.files import Progress, atomic_write
from coderig_deploy.bundle.manifest import OllamaEntry
from coderig_deploy.errors import UserInputError

RELEASES = "https://github.com/ollama/ollama/releases/download"
ARCHIVE = "ollama-linux-amd64.tar.zst"
CHECKSUMS = "sha256sum.txt"
PIN = re.compile(r"^sha256:([0-9a-f]{64})$")


def release_url(version: str, download_base: str = RELEASES) -> str:
    return f"{download_base.rstrip('/')}/v{version}/{ARCHIVE}"


def parse_pin(pin: str | None) -> str | None:
    """`sha256:<64 hex>` -> hex; exit 2 on anything else."""
    if pin is None:
        return None
    match = PIN.match(pin.strip().lower())
    if not match:
        raise UserInputError(f"--ollama-sha256 {pin!r}: expected sha256:<64 hex digits>")
    return match.group(1)


def parse_checksums(text: str, archive: str) -> str | None:
    """The hex digest sha256sum.txt lists for `archive` (`<hex>  [./]name` lines)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]) and \
                parts[1].lstrip("*").removeprefix("./") == archive:
            return parts[0]
    return None


def check_url(url: str, pin: str | None, trusted_http: bool) -> str:
    """The archive's file name; exit 2 for a URL that is not http(s), or plain HTTP without a pin."""
    parsed = urlparse(url)
    archive = PurePosixPath(parsed.path).name
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not archive:
        raise UserInputError(f"--ollama-url {url!r}: expected an http(s) URL of the release archive")
    if parsed.scheme == "http" and pin is None and not trusted_http:
        raise UserInputError(f"--ollama-url {url}: plain HTTP without a pin; give --ollama-sha256 sha256:<hex> "
                             "taken from the release page")
    return archive


def fetch(bundle: Path, version: str, url: str, pin: str | None, trusted_http: bool = False,
          progress: Progress | None = None) -> tuple[OllamaEntry, str]:
    """Download the archive and its sha256sum.txt into ollama/v<version>/; both must agree (and the pin).

    Returns the entry and the bundle path of the checksum file. A plain-HTTP source
    needs a pin unless it is `trusted_http` (the sandbox lab's own artifact server).
    """
    archive = check_url(url, pin, trusted_http)
    checksums_url = url.rsplit("/", 1)[0] + "/" + CHECKSUMS
    text, _ = fetch_bytes(checksums_url)
    listed = parse_checksums(text.decode(errors="replace"), archive)
    if listed is None:
        raise DownloadError(f"{checksums_url} lists no sha256 for {archive}")
    if pin is not None and pin != listed:
        raise DownloadError(f"{checksums_url} lists {listed} for {archive}, but the pin is sha256:{pin}")
    relative = f"ollama/v{version}/{archive}"
    download(url, bundle / relative, listed, bundle / PARTIAL_DIR, progress)
    checksums = f"ollama/v{version}/{CHECKSUMS}"
    atomic_write(bundle / checksums, text)
    entry = OllamaEntry(version=version, path=relative, sha256=listed, source_url=url, pinned=pin is not None)
    return entry, checksums
