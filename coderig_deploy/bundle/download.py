"""Resumable, verified HTTP downloads.

A download goes to DIR/.partial/<name>; an interrupted one continues from the
bytes already there with an HTTP Range request (also in a later run), the sha256
is checked over the whole file at the end, and only then is it renamed to its
final name.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from coderig_deploy.bundle import registry_auth
from coderig_deploy.bundle.files import CHUNK, BundleWriteError, Progress, publish
from coderig_deploy.errors import RunFailed

PARTIAL_DIR = ".partial"
ATTEMPTS = 4


class DownloadError(RunFailed):
    """A download failed, or its content did not match the expected digest."""


def fetch_bytes(url: str, headers: dict[str, str] | None = None, limit: int = 16 << 20,
                timeout: float = 60.0) -> tuple[bytes, dict[str, str]]:
    """GET a small document (a manifest, a checksum list) into memory; its headers too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with registry_auth.urlopen(request, timeout=timeout) as response:
            data = response.read(limit + 1)
            found = {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"GET {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"GET {url}: {getattr(exc, 'reason', exc)}") from None
    if len(data) > limit:
        raise DownloadError(f"GET {url}: larger than {limit} bytes")
    return data, found


def download(url: str, final: Path, sha256: str, partial_dir: Path, progress: Progress | None = None,
             size: int | None = None, timeout: float = 60.0) -> None:
    """Download `url` to `final`, resuming from `partial_dir`/<name>; verify `sha256` (hex)."""
    partial_dir.mkdir(parents=True, exist_ok=True)
    partial = partial_dir / final.name
    got = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            got = _transfer(url, partial, size, progress, timeout)
            break
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            if isinstance(exc, (urllib.error.HTTPError, registry_auth.TokenError)) or attempt == ATTEMPTS:
                reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) \
                    else getattr(exc, "reason", None) or exc
                kept = partial.stat().st_size if partial.exists() else 0
                raise DownloadError(f"GET {url}: {reason} ({kept} bytes kept in {partial}; "
                                    "run again to resume)") from None
            time.sleep(min(1.0 * attempt, 5.0))
    if got != sha256:
        partial.unlink()
        raise DownloadError(f"{url}: sha256 {got} does not match the expected {sha256}; discarded")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        publish(partial, final)
    except OSError as exc:
        raise BundleWriteError(f"cannot write {final}: {exc.strerror}") from None


def _transfer(url: str, partial: Path, size: int | None, progress: Progress | None, timeout: float) -> str:
    """Append the rest of `url` to `partial`; the hex sha256 of the whole file, hashed while streaming."""
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have > size:
        partial.unlink()
        have = 0
    digest = _prefix_hash(partial, have)
    if size is not None and have == size:
        return digest.hexdigest()
    headers = {"Range": f"bytes={have}-"} if have else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        response = registry_auth.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the partial file is complete
            return digest.hexdigest()
        raise
    with response:
        if have and response.status != 206:  # the server ignored Range: start over
            have, digest = 0, hashlib.sha256()
        total = _total(response, have, size)
        with _open_partial(partial, have) as out:
            done = have
            # read1: what has arrived (up to 1 MiB), written at once, so a kill loses nothing received
            while chunk := response.read1(CHUNK):
                _write(out, chunk, partial)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(partial.name, done, total)
        if total is not None and done < total:
            raise OSError(f"connection closed after {done} of {total} bytes")
    return digest.hexdigest()


def _open_partial(partial: Path, have: int) -> BinaryIO:
    try:
        return open(partial, "ab" if have else "wb")
    except OSError as exc:  # a local problem: retrying the download cannot help
        raise BundleWriteError(f"cannot write {partial}: {exc.strerror}") from None


def _write(out: BinaryIO, chunk: bytes, partial: Path) -> None:
    try:
        out.write(chunk)
        out.flush()
    except OSError as exc:
        raise BundleWriteError(f"cannot write {partial}: {exc.strerror} (the bytes so far are kept; "
                               "free space and run again to resume)") from None


def _total(response: object, have: int, size: int | None) -> int | None:
    if size is not None:
        return size
    length = getattr(response, "headers", {}).get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _prefix_hash(path: Path, length: int) -> hashlib._Hash:
    """A sha256 object fed with the first `length` bytes of `path` (what a resume continues)."""
    digest = hashlib.sha256()
    if length:
        with open(path, "rb") as handle:
            while length and (chunk := handle.read(min(CHUNK, length))):
                digest.update(chunk)
                length -= len(chunk)
    return digest
