"""Finding 11: each invoking user gets an own lab (state dir, bridge, subnet) by default."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox import naming
from coderig_deploy.sandbox.state import LABS_ROOT, invoking_user, lab_home


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CODERIG_SANDBOX_HOME", raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    return monkeypatch


def test_sudo_users_get_their_own_lab_bridge_and_subnet(as_root: pytest.MonkeyPatch) -> None:
    as_root.setenv("SUDO_USER", "alice")
    alice = lab_home()
    as_root.setenv("SUDO_USER", "bob")
    bob = lab_home()
    assert (alice, bob) == (LABS_ROOT / "alice", LABS_ROOT / "bob")
    ids = naming.lab_id(str(alice)), naming.lab_id(str(bob))
    assert ids[0] != ids[1]
    assert naming.bridge_name(ids[0]) != naming.bridge_name(ids[1])
    assert naming.subnet_candidates(ids[0])[0] != naming.subnet_candidates(ids[1])[0]


def test_without_sudo_the_uid_names_the_lab(as_root: pytest.MonkeyPatch) -> None:
    as_root.delenv("SUDO_USER", raising=False)
    assert lab_home() == LABS_ROOT / pwd.getpwuid(0).pw_name


def test_sudo_user_is_ignored_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-root caller cannot pick another user's lab by setting SUDO_USER."""
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setattr("os.getuid", lambda: 0)
    monkeypatch.setenv("SUDO_USER", "alice")
    assert invoking_user() == pwd.getpwuid(0).pw_name


def test_the_environment_still_overrides(as_root: pytest.MonkeyPatch, tmp_path: Path) -> None:
    as_root.setenv("SUDO_USER", "alice")
    as_root.setenv("CODERIG_SANDBOX_HOME", str(tmp_path))
    assert lab_home() == tmp_path.resolve()


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "x" * 65, "tab\tname"])
def test_a_user_name_unsafe_as_a_directory_is_refused(as_root: pytest.MonkeyPatch, name: str) -> None:
    as_root.setenv("SUDO_USER", name)
    with pytest.raises(EnvironmentProblem, match="cannot name a sandbox lab: set CODERIG_SANDBOX_HOME"):
        lab_home()


def test_a_shared_lab_of_an_older_version_is_pointed_out(as_root: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from coderig_deploy.cli import sandbox as cli_sandbox

    as_root.setattr(cli_sandbox, "LABS_ROOT", tmp_path)
    as_root.setenv("SUDO_USER", "alice")
    cli_sandbox._lab()
    assert "older version" not in capsys.readouterr().err
    (tmp_path / "lab.json").write_text("{}")
    cli_sandbox._lab()
    err = " ".join(capsys.readouterr().err.split())
    assert f"`CODERIG_SANDBOX_HOME={tmp_path} coderig-deploy sandbox down`" in err


def test_sandbox_down_takes_json_like_every_command(tmp_path: Path) -> None:
    """README: every command takes --json. An empty lab: nothing removed, said as JSON on stdout."""
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "sandbox", "down", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"lab": str(tmp_path), "removed": []}
    plain = subprocess.run([sys.executable, "-m", "coderig_deploy", "sandbox", "down"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert plain.stdout == "" and f"removed 0 host(s) from {tmp_path}" in plain.stderr
