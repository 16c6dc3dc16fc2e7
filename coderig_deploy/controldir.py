"""A private directory for one run's SSH control sockets.

A ControlMaster socket is a live, authenticated connection: whoever can open it runs
commands on the host. So the directory is the run's own: created here with mode
0700 (never a predictable path another user could create first), its owner and mode
checked, and removed with its masters at the end of the run. A socket path may be
at most 107 bytes; Ansible names sockets by a 10-character hash and ssh adds a
17-character temporary suffix while it binds, which leaves 79 bytes for the
directory (64 used, for margin). The run directory is used when that short, else $XDG_RUNTIME_DIR, else
a fresh random directory under the system temp dir.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem

MAX_DIR_LEN = 64
NAME = "cp"


def check_private(path: Path) -> None:
    """Refuse `path` unless it is a real directory owned by us and closed to others."""
    try:
        info = path.lstat()
    except OSError as exc:
        raise EnvironmentProblem(f"SSH control directory {path}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise EnvironmentProblem(f"SSH control directory {path} is not a directory (a link?): refusing it")
    if info.st_uid != os.geteuid():
        raise EnvironmentProblem(f"SSH control directory {path} belongs to uid {info.st_uid}, not to you "
                                 f"(uid {os.geteuid()}): refusing it; remove it or use another --runs-dir")
    if info.st_mode & 0o077:
        raise EnvironmentProblem(f"SSH control directory {path} has mode {stat.S_IMODE(info.st_mode):o}: "
                                 "other users could reach its sockets; refusing it (it must be 0700)")


def create(run_dir: Path) -> Path:
    """A new private control directory for the run in `run_dir`."""
    candidate = run_dir / NAME
    if len(str(candidate)) <= MAX_DIR_LEN:
        try:
            candidate.mkdir(mode=0o700)
        except FileExistsError:
            pass  # checked below: only ours, 0700, is used
        check_private(candidate)
        return candidate
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and len(runtime) <= MAX_DIR_LEN - 20 else Path(tempfile.gettempdir())
    if runtime and base == Path(runtime):
        check_private(base)
    path = Path(tempfile.mkdtemp(prefix="coderig-", dir=base))  # 0700, unpredictable name
    check_private(path)
    return path


def remove(path: Path) -> None:
    """Stop the masters still listening in `path` (ControlPersist) and remove it."""
    if not path.is_dir() or path.is_symlink():
        return
    for sock in path.iterdir():
        if sock.is_socket():
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "coderig-control"],
                           capture_output=True, timeout=10, check=False)
    shutil.rmtree(path, ignore_errors=True)
