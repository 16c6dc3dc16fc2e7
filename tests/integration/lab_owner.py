"""Which test labs still have a live owner.

A pytest session that is killed (SIGKILL, a CI timeout, a closed terminal) never runs its
fixture teardown, so its sandbox hosts, bridges and network namespaces outlive it. Every
session that boots a lab holds an exclusive flock on `<home>/session.lock` for as long as
it runs; the kernel drops the lock when the process dies, however it dies. A later
session finds the homes whose lock it can take and tears them down. Labs of sessions
that are still running (another engineer's, on the same machine) keep their lock and
are left alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from coderig_deploy.sandbox import Lab

OWNER_LOCK = "session.lock"


def claim(home: Path) -> int:
    """Lock `home` for this process; returns the descriptor to keep open.

    The lock is taken on a temporary name and renamed into place, so a sweeper never
    sees `session.lock` unlocked while its owner is still starting."""
    pending = home / f"{OWNER_LOCK}.new"
    fd = os.open(pending, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(pending, home / OWNER_LOCK)
    return fd


def abandoned(root: Path) -> list[Path]:
    """Lab homes under `root` whose owning session has died."""
    found = []
    for lock in sorted(root.glob(f"*/{OWNER_LOCK}")):
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            os.close(fd)
        found.append(lock.parent)
    return found


def sweep(root: Path) -> list[Path]:
    """Tear down (hosts, bridge, namespaces, services) and remove every abandoned lab under `root`."""
    swept = abandoned(root) if root.is_dir() else []
    for home in swept:
        Lab(home).down()
        shutil.rmtree(home, ignore_errors=True)
    return swept
