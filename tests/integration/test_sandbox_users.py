"""Finding 11: two users of the default lab on one machine never share or remove each
other's hosts. Users are simulated the way sudo presents them (SUDO_USER as root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.sandbox import Lab
from coderig_deploy.sandbox.state import LABS_ROOT

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")


def cli(user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CODERIG_SANDBOX_HOME"}
    env["SUDO_USER"] = user
    return subprocess.run([CLI, "sandbox", *args],
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def hosts_of(user: str) -> list[dict[str, Any]]:
    proc = cli(user, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows


@pytest.fixture
def two_users() -> Iterator[tuple[str, str]]:
    # Unique names: a developer's real lab (or a parallel test run) is never touched.
    suffix = uuid.uuid4().hex[:6]
    users = (f"alice-{suffix}", f"bob-{suffix}")
    yield users
    for user in users:
        home = LABS_ROOT / user
        if home.is_dir():
            Lab(home).down()
            shutil.rmtree(home)


def test_each_user_gets_an_own_lab_and_down_leaves_the_other(two_users: tuple[str, str]) -> None:
    alice, bob = two_users
    for user in two_users:
        proc = cli(user, "up", "--hosts", "1", "--gpu", "rtx-4070")
        assert proc.returncode == 0, proc.stderr
    (alice_host,), (bob_host,) = hosts_of(alice), hosts_of(bob)
    assert alice_host["name"] == bob_host["name"] == "ws1"  # same names, different labs
    assert alice_host["ip"].rsplit(".", 1)[0] != bob_host["ip"].rsplit(".", 1)[0]  # other /24
    alice_lab, bob_lab = Lab(LABS_ROOT / alice), Lab(LABS_ROOT / bob)
    assert alice_lab.state.bridge != bob_lab.state.bridge  # type: ignore[union-attr]
    assert str(alice_lab.key) in cli(alice, "inventory").stdout

    proc = cli(bob, "down")
    assert proc.returncode == 0, proc.stderr
    assert f"removed 1 host(s) from {LABS_ROOT / bob}: ws1" in proc.stderr
    assert hosts_of(bob) == []
    (still,) = hosts_of(alice)
    assert still["state"] == "running"
    assert alice_lab.ssh("ws1", "systemctl is-system-running").stdout.strip() == "running"
    assert Path(f"/sys/class/net/{alice_lab.state.bridge}").exists()  # type: ignore[union-attr]
