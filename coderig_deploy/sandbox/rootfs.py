"""The one shared, read-only Debian rootfs every sandbox host overlays.

Built once per machine with debootstrap from the configured mirror, cached as a
zstd tarball outside the checkout (keyed by the package list), and unpacked once
next to it; hosts never write to it (each has an overlay upper directory).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox.mirror import Mirror, configured_mirror

# What the Ansible roles need on a target, beyond debootstrap's minbase.
PACKAGES: tuple[str, ...] = (
    "acl", "ca-certificates", "curl", "dbus", "iproute2", "kmod", "openssh-server",
    "procps", "python3", "python3-apt", "sudo", "systemd", "systemd-sysv", "zstd",
)
# Bump when the post-debootstrap customisation below changes.
RECIPE_VERSION = "1"
COMPLETE_MARKER = ".coderig-rootfs-complete"
TAR_FLAGS = ("--numeric-owner", "--xattrs", "--xattrs-include=*")
PROGRESS_EVERY = 12.0  # seconds between progress lines of a long step

Report = Callable[[str], None]


class Rootfs(BaseModel):
    """Where the unpacked rootfs is and how it got there."""

    path: Path
    tarball: Path
    source: str  # "unpacked" | "tarball" | "debootstrap"
    seconds: float


def cache_dir() -> Path:
    """The machine-wide cache (override with CODERIG_CACHE_DIR)."""
    return Path(os.environ.get("CODERIG_CACHE_DIR", "/var/cache/coderig"))


def cache_key(suite: str, packages: tuple[str, ...] = PACKAGES) -> str:
    """A short hash of everything that decides the rootfs contents."""
    text = "\n".join([RECIPE_VERSION, suite, "minbase", *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextmanager
def _locked(lock_path: Path, progress: Report) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"rootfs: another process is building it ({lock_path} is locked); waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run_with_progress(argv: list[str], what: str, progress: Report,
                      every: float = PROGRESS_EVERY) -> None:
    """Run `argv`; every `every` seconds report the elapsed time and its last output line
    (debootstrap's "I: Retrieving ...", "I: Unpacking ..." name the phase)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    started = time.monotonic()
    while True:
        try:
            proc.wait(timeout=every)
            break
        except subprocess.TimeoutExpired:
            last = lines[-1].strip() if lines else "starting"
            progress(f"{what}: {time.monotonic() - started:.0f}s, {last}")
    reader.join()
    if proc.returncode != 0:
        tail = [line.strip() for line in lines[-5:]]
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


def _debootstrap(mirror: Mirror, target: Path, progress: Report) -> None:
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("debootstrap is not installed: apt-get install debootstrap")
    progress(f"rootfs: debootstrap {mirror.suite} from {mirror.uri} (about 3 minutes, once per machine)")
    run_with_progress(
        ["debootstrap", "--variant=minbase", "--components=main",
         "--include=" + ",".join(PACKAGES), mirror.suite, str(target), mirror.uri],
        f"debootstrap {mirror.suite}", progress,
    )
    _customise(target)


def _customise(root: Path) -> None:
    """Make the tree a template: per-host identity is written at `up`, not here."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def _pack(root: Path, tarball: Path) -> None:
    partial = tarball.with_suffix(".partial")
    _run(["tar", *TAR_FLAGS, "-I", "zstd -T0 -3", "-C", str(root), "-cf", str(partial), "."],
         f"packing {tarball}")
    partial.rename(tarball)


def _unpack(tarball: Path, target: Path) -> None:
    target.mkdir(parents=True)
    _run(["tar", *TAR_FLAGS, "-I", "zstd", "-C", str(target), "-xpf", str(tarball)],
         f"unpacking {tarball}")


def ensure_rootfs(mirror: Mirror | None = None, progress: Report | None = None) -> Rootfs:
    """Return the unpacked shared rootfs, building or unpacking it if needed."""
    report = progress or (lambda message: None)
    mirror = mirror or configured_mirror()
    key = cache_key(mirror.suite)
    base = cache_dir()
    path, tarball = base / f"rootfs-{key}", base / f"rootfs-{key}.tar.zst"
    started = time.monotonic()
    with _locked(base / f"rootfs-{key}.lock", report):
        if (path / COMPLETE_MARKER).is_file():
            return Rootfs(path=path, tarball=tarball, source="unpacked",
                          seconds=time.monotonic() - started)
        scratch = base / f"rootfs-{key}.building"
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)
        if tarball.is_file():
            source = "tarball"
            report(f"rootfs: unpacking {tarball}")
            _unpack(tarball, scratch)
        else:
            source = "debootstrap"
            _debootstrap(mirror, scratch, report)
            report(f"rootfs: packing it into {tarball} for the next labs")
            _pack(scratch, tarball)
        (scratch / COMPLETE_MARKER).write_text(key + "\n")
        scratch.rename(path)
    return Rootfs(path=path, tarball=tarball, source=source, seconds=time.monotonic() - started)
