"""SSH control sockets live in a private directory the run owns, removed at the end."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from coderig_deploy import controldir
from coderig_deploy.errors import EnvironmentProblem


def _short_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path("/tmp") / f"crt-{os.getpid()}-{tmp_path_factory.getbasetemp().name[-6:]}"
    path.mkdir(exist_ok=True)
    return path


def test_a_short_run_dir_holds_its_own_0700_control_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir = _short_dir(tmp_path_factory)
    path = controldir.create(run_dir)
    assert path == run_dir / "cp"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700 and path.stat().st_uid == os.geteuid()
    controldir.remove(path)
    assert not path.exists()
    run_dir.rmdir()


def test_a_long_run_dir_gets_a_fresh_private_dir_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    run_dir = tmp_path / ("x" * 70)
    run_dir.mkdir()
    first, second = controldir.create(run_dir), controldir.create(run_dir)
    try:
        assert first != second and len(str(first)) <= controldir.MAX_DIR_LEN
        assert not str(first).startswith(str(run_dir))
        assert stat.S_IMODE(first.stat().st_mode) == 0o700
    finally:
        controldir.remove(first)
        controldir.remove(second)
    assert not first.exists() and not second.exists()


def test_a_precreated_world_writable_dir_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    run_dir = _short_dir(tmp_path_factory)
    planted = run_dir / "cp"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(EnvironmentProblem, match=r"has mode 777: other users could reach its sockets"):
        controldir.create(run_dir)
    planted.rmdir()
    run_dir.rmdir()


def test_a_dir_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "cp"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)  # the tests run as root (they boot sandbox hosts)
    with pytest.raises(EnvironmentProblem, match=r"belongs to uid 65534, not to you"):
        controldir.check_private(planted)


def test_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir(mode=0o700)
    (tmp_path / "cp").symlink_to(target)
    with pytest.raises(EnvironmentProblem, match="is not a directory"):
        controldir.check_private(tmp_path / "cp")


def test_an_xdg_runtime_dir_open_to_others_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Path("/tmp") / f"crt-xdg-{os.getpid()}"
    runtime.mkdir(mode=0o777, exist_ok=True)
    runtime.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    try:
        with pytest.raises(EnvironmentProblem, match="has mode 777"):
            controldir.create(tmp_path / ("y" * 70))
    finally:
        runtime.rmdir()
