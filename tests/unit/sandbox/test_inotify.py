"""fs.inotify.max_user_instances is sized for every host on the machine, not only the lab being booted."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderig_deploy.sandbox import hosts


def _proc(tmp_path: Path, cmdlines: dict[str, bytes]) -> Path:
    for pid, cmdline in cmdlines.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "cmdline").write_bytes(cmdline)
    return tmp_path


def test_every_nspawn_on_the_machine_is_counted_whatever_its_lab(tmp_path: Path) -> None:
    proc = _proc(tmp_path, {
        "101": b"/usr/bin/systemd-nspawn\0--boot\0--directory\0/var/lib/coderig/sandbox/alice/hosts/ws1/root\0",
        "102": b"systemd-nspawn\0--boot\0--directory\0/var/lib/coderig/test-labs/fleet-x/hosts/f1/root\0",
        "103": b"/usr/lib/systemd/systemd\0",  # a host's own init, not a host
        "104": b"python3\0-m\0pytest\0systemd-nspawn\0",  # named only as an argument
        "105": b"",  # a kernel thread
    })
    (proc / "self").mkdir()  # not a pid
    assert hosts.running_hosts(proc) == 2


def test_the_limit_grows_with_the_hosts_and_never_drops_below_the_floor() -> None:
    assert hosts.inotify_instances_wanted(0, 2) == 1024
    # Two test sessions on one controller, 40 hosts each: the old fixed 1024 is what ran out.
    assert hosts.inotify_instances_wanted(70, 10) == 80 * hosts.INOTIFY_PER_HOST > 1024


def test_ensure_raises_but_never_lowers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = tmp_path / "max_user_instances"
    monkeypatch.setattr(hosts, "INOTIFY_INSTANCES", limit)
    monkeypatch.setattr(hosts, "running_hosts", lambda: 60)
    limit.write_text("1024\n")
    hosts.ensure_inotify_instances(4)
    assert int(limit.read_text()) == 64 * hosts.INOTIFY_PER_HOST
    limit.write_text("100000\n")
    hosts.ensure_inotify_instances(4)
    assert int(limit.read_text()) == 100000
