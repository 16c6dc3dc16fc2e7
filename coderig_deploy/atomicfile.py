"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Each file is written to a temporary file in the same directory, flushed to disk
(fsync), then renamed over the target; the directory is synced so the rename
survives a crash. When anything fails (a full disk, a read-only directory) the
temporary files are removed, every target keeps its previous content, and
`WriteFailed` names the file and the reason in one line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem


class WriteFailed(EnvironmentProblem):
    """A report or state file could not be written (disk full, read-only, permissions)."""


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` with `data` in one step (see the module docstring)."""
    write_all({path: data}, mode)


def write_all(files: Mapping[Path, bytes | str], mode: int = 0o644) -> None:
    """Write every file to a temporary first; rename them only when all were written.

    A failure before the renames leaves every target as it was."""
    staged: dict[Path, Path] = {}
    try:
        for path, data in files.items():
            staged[path] = _stage(path, data.encode("utf-8") if isinstance(data, str) else data, mode)
        for path, tmp in staged.items():
            os.replace(tmp, path)
        for directory in {p.parent for p in staged}:
            _sync_dir(directory)
    except OSError as exc:
        for tmp in staged.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        where = exc.filename or next(iter(files), "")
        reason = exc.strerror or str(exc)
        raise WriteFailed(f"cannot write {_target(where, staged)}: {reason} "
                          "(the previous file is unchanged)") from None


def _stage(path: Path, data: bytes, mode: int) -> Path:
    """`data` in a synced temporary file next to `path`."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    return tmp


def _target(where: object, staged: dict[Path, Path]) -> str:
    """The target file an error is about (not the temporary's name)."""
    text = str(where)
    for path, tmp in staged.items():
        if text == str(tmp):
            return str(path)
    return text


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
