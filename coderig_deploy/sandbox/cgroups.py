"""One cgroup per sandbox host, so parallel boots don't collide and cleanup is total.

Each host's launcher (a shell exec'ing systemd-nspawn) moves itself into ``coderig/<lab>-<host>`` of every hierarchy
we use before it execs systemd-nspawn (without it, hosts sharing one cgroup fail to
boot at random with status=219/CGROUP). Every process of a host stays below that
directory, so killing what it lists and removing it leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "coderig"
# On a hybrid (v1 + v2) machine; the memory hierarchy gives RAM per host.
HYBRID_HIERARCHIES = ("systemd", "unified", "memory")


def hierarchies(root: Path = ROOT) -> list[Path]:
    """The mount points to place a host in: the unified root, or the hybrid ones."""
    if (root / "cgroup.controllers").exists():
        return [root]
    return [root / h for h in HYBRID_HIERARCHIES if (root / h).is_dir()]


def host_dirs(name: str) -> list[Path]:
    return [h / PARENT / name for h in hierarchies()]


def create(name: str) -> list[Path]:
    dirs = host_dirs(name)
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)
    return dirs


def pids(name: str) -> set[int]:
    """Every process below the host's cgroup directories."""
    found: set[int] = set()
    for directory in host_dirs(name):
        for procs in directory.rglob("cgroup.procs") if directory.is_dir() else []:
            try:
                found.update(int(p) for p in procs.read_text().split())
            except OSError:
                continue
    return found


def kill_all(name: str, timeout: float = 5.0) -> None:
    """SIGKILL whatever still runs in the host's cgroups, until none is left."""
    deadline = time.monotonic() + timeout
    while (left := pids(name)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def remove(name: str) -> None:
    """Remove the host's cgroup directories, deepest first (they must be empty)."""
    for directory in host_dirs(name):
        if not directory.is_dir():
            continue
        subdirs = sorted((d for d in directory.rglob("*") if d.is_dir()),
                         key=lambda d: len(d.parts), reverse=True)
        for sub in [*subdirs, directory]:
            try:
                sub.rmdir()
            except FileNotFoundError:
                pass


def memory_bytes(name: str) -> int | None:
    """Resident memory of the host (anon + page cache charged to it), if measurable."""
    for directory in host_dirs(name):
        for filename in ("memory.current", "memory.usage_in_bytes"):
            if (directory / filename).is_file():
                return int((directory / filename).read_text())
    return None


def cpu_seconds(name: str) -> float | None:
    """CPU time the host's processes used so far (cgroup v2 cpu.stat), if measurable."""
    for directory in host_dirs(name):
        stat = directory / "cpu.stat"
        if stat.is_file():
            for line in stat.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
    return None
