"""A killed session's labs are found; a live session's are not (real flocks, real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.integration.lab_owner import abandoned, claim

HOLDER = """
import sys
from pathlib import Path
from tests.integration.lab_owner import claim
fd = claim(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.read()
"""


def _hold_in_child(home: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(home)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_only_the_killed_sessions_lab_is_abandoned(tmp_path):
    live, killed, unowned = (tmp_path / n for n in ("live-1", "killed-1", "old-1"))
    for home in (live, killed, unowned):
        home.mkdir()
    alive, dead = _hold_in_child(live), _hold_in_child(killed)
    try:
        assert abandoned(tmp_path) == []
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        # A home without a lock file (being created, or from before locks) is never taken.
        assert abandoned(tmp_path) == [killed]
    finally:
        alive.kill()
        alive.wait()


def test_this_process_keeps_its_claim(tmp_path):
    home = tmp_path / "mine-1"
    home.mkdir()
    fd = claim(home)
    try:
        # flock is per open file: a sweeper in this very process still sees the lab as owned.
        assert abandoned(tmp_path) == []
        assert not (home / "session.lock.new").exists()
    finally:
        os.close(fd)
    assert abandoned(tmp_path) == [home]
