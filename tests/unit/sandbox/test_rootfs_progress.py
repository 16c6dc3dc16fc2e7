"""The rootfs build (debootstrap, ~3 minutes) says what it is doing while it runs."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox.rootfs import _locked, run_with_progress

FAKE_DEBOOTSTRAP = """
echo 'I: Retrieving InRelease'
sleep 0.5
echo 'I: Retrieving libc6 2.36-9'
sleep 0.5
echo 'I: Unpacking base-files...' >&2
sleep 0.5
"""


def test_a_long_step_reports_elapsed_time_and_its_phase() -> None:
    seen: list[str] = []
    run_with_progress(["sh", "-c", FAKE_DEBOOTSTRAP], "debootstrap bookworm", seen.append, every=0.2)
    assert len(seen) >= 4, seen
    assert all(line.startswith("debootstrap bookworm: ") and "s, " in line for line in seen)
    assert any("I: Retrieving libc6" in line for line in seen)
    assert any("I: Unpacking base-files" in line for line in seen)  # stderr counts too


def test_a_failed_step_names_its_last_lines() -> None:
    with pytest.raises(EnvironmentProblem, match=r"debootstrap bookworm failed \(exit 3\): E: no mirror"):
        run_with_progress(["sh", "-c", "echo 'E: no mirror' >&2; exit 3"], "debootstrap bookworm",
                          lambda m: None, every=0.2)


def test_waiting_for_another_build_is_said(tmp_path: Path) -> None:
    lock = tmp_path / "rootfs-x.lock"
    seen: list[str] = []
    with lock.open("w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        threading.Timer(0.3, lambda: fcntl.flock(other, fcntl.LOCK_UN)).start()
        started = time.monotonic()
        with _locked(lock, seen.append):
            pass
    assert time.monotonic() - started >= 0.25
    assert seen == [f"rootfs: another process is building it ({lock} is locked); waiting"]
