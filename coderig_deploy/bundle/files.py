"""File helpers of a bundle: hashing, atomic writes, safe relative paths.

Nothing half-written ever sits under a final name: content goes to a temporary
file in the same directory, is fsynced, then renamed over the final name.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from coderig_deploy.atomicfile import WriteFailed, write_atomic
from coderig_deploy.errors import RunFailed

CHUNK = 1 << 20
# Bundle-relative paths: plain names joined by "/", no "..", nothing absolute.
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+:~-]*$")

Progress = Callable[[str, int, int | None], None]  # (name, bytes done, total or None)


class BundleWriteError(RunFailed):
    """A file of the bundle could not be written (disk full, read-only, ...)."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temporary: Path, final: Path) -> None:
    """fsync `temporary`, rename it to `final` and fsync the directory."""
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    fsync_dir(final.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file + fsync + rename (atomicfile); clean error on failure."""
    try:
        write_atomic(path, data)
    except WriteFailed as exc:
        raise BundleWriteError(str(exc)) from None


def require_space(directory: Path, needed: int, what: str) -> None:
    """Refuse up front when `directory`'s file system has less than `needed` bytes free."""
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise BundleWriteError(f"{what} needs {needed / 2**30:.1f} GiB, but {directory} has "
                               f"{free / 2**30:.1f} GiB free")


def is_safe_relative(text: str) -> bool:
    """True for a normalised relative path whose parts are plain names."""
    path = PurePosixPath(text)
    return bool(text) and not path.is_absolute() and str(path) == text and \
        all(_PART.match(part) for part in path.parts)
