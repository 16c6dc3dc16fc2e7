"""Report and state files are replaced atomically; a full disk leaves the previous ones intact.

The full disk is a real one: a 64 KiB tmpfs mounted for the test (root needed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coderig_deploy.atomicfile import WriteFailed, write_all, write_atomic
from coderig_deploy.reports import host_report, read_run, run_report, write_run
from coderig_deploy.reports.store import FILES

from .test_verdict import EXP, GOOD


def _mount(path: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs to fill a disk and must run as root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB filesystem, unmounted again after the test."""
    disk = tmp_path / "disk"
    _mount(disk, "size=64k,mode=0755")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _report(reason_bytes: int = 0):  # a RunReport; its size grows with reason_bytes
    hosts = [host_report("ws-1", GOOD, EXP)]
    if reason_bytes:
        hosts.append(host_report("ws-2", {"error": "x" * reason_bytes}, EXP))
    return run_report(hosts, "budget-4070", "qwen2.5-coder:14b")


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    write_atomic(target, '{"new": 1}', mode=0o600)
    assert target.read_text() == '{"new": 1}'
    assert target.stat().st_mode & 0o777 == 0o600
    assert _leftovers(tmp_path) == []


def test_a_full_disk_keeps_the_previous_report_and_says_so(small_disk: Path) -> None:
    write_run(small_disk, _report())
    before = {name: (small_disk / name).read_bytes() for name in FILES}
    with pytest.raises(WriteFailed) as caught:
        write_run(small_disk, _report(reason_bytes=200_000))  # three files, each > 64 KiB
    message = str(caught.value)
    assert message.startswith(f"cannot write {small_disk}/report.json: No space left on device")
    assert message.endswith("(the previous file is unchanged)") and "\n" not in message
    assert caught.value.exit_code == 2
    assert {name: (small_disk / name).read_bytes() for name in FILES} == before
    assert read_run(small_disk).hosts[0].host == "ws-1"
    assert _leftovers(small_disk) == []


def test_all_or_nothing_when_a_later_file_does_not_fit(small_disk: Path) -> None:
    first, second = small_disk / "a.json", small_disk / "b.json"
    write_all({first: "a1", second: "b1"})
    with pytest.raises(WriteFailed, match="b.json: No space left on device"):
        write_all({first: "a2", second: "b" * 100_000})
    assert (first.read_text(), second.read_text()) == ("a1", "b1")  # a2 fit, but was not renamed in
    assert _leftovers(small_disk) == []


def test_a_read_only_directory_is_one_clear_error(tmp_path: Path) -> None:
    disk = tmp_path / "ro"
    _mount(disk, "size=64k,ro")
    try:
        with pytest.raises(WriteFailed, match=r"cannot write .*/ro/apply.json: Read-only file system"):
            write_atomic(disk / "apply.json", "{}")
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_bench_out_on_a_full_disk_exits_2_with_one_line(small_disk: Path) -> None:
    """The CLI path: `bench --out` writes a report (nobody listens: the report says so)."""
    argv = [sys.executable, "-m", "coderig_deploy", "bench", "--model", "m:1b", "--host", "http://127.0.0.1:9",
            "--no-code-check", "--runs", "1", "--out", str(small_disk), "--json"]
    env = {**os.environ, "COLUMNS": "400"}  # one line, however long the path
    first = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert first.returncode == 1, first.stderr  # written, and the verdict is fail
    before = (small_disk / "report.json").read_bytes()
    assert json.loads(before)["hosts"][0]["host"] == "127.0.0.1"
    free = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 4096))
    second = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert second.returncode == 2, second.stdout + second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in second.stderr
    assert (small_disk / "report.json").read_bytes() == before
