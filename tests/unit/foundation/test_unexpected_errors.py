"""What a user sees when something nothing caught goes wrong: one line, never a traceback on the terminal.

An operating-system error (a file the controller cannot read, a full disk) names the path and the reason
(exit 2, like other bad input or environment); any other exception is reported as a bug, with its traceback
in a file only the user can read (exit 70). CODERIG_DEBUG=1 still raises. Each case runs `main()`, the
function the console script calls, in-process.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import sys
from pathlib import Path

import pytest

import coderig_deploy.cli.gpus as gpus_cli
from coderig_deploy.cli import INTERNAL_ERROR, main, os_error_text


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["coderig-deploy", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


@pytest.fixture
def no_debug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("CODERIG_DEBUG", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # tempfile reads TMPDIR once, so reset its cache
    monkeypatch.setattr("tempfile.tempdir", None)
    return tmp_path


def test_unreadable_run_directory_is_one_line(capsys, monkeypatch, no_debug: Path) -> None:
    """A file the controller may not read, wherever it is opened: the path and the reason, exit 2."""
    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(no_debug / "run" / "report.json"))
    monkeypatch.setattr(gpus_cli, "load_catalog", refuse)
    code, out, err = run(capsys, monkeypatch, "gpus")
    assert code == 2, (out, err)
    assert f"error: {no_debug / 'run' / 'report.json'}: Permission denied" in err
    assert "Traceback" not in out + err


def test_real_unreadable_file(capsys, monkeypatch, no_debug: Path) -> None:
    """The same through a real file: `report` on a run directory whose report.json is a directory."""
    run_dir = no_debug / "run"
    (run_dir / "report.json").mkdir(parents=True)
    code, out, err = run(capsys, monkeypatch, "report", str(run_dir))
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert err.strip() == f"error: {run_dir / 'report.json'}: Is a directory", err


def test_bug_is_reported_as_one_with_a_private_traceback_file(capsys, monkeypatch, no_debug: Path) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise KeyError("vram_mib")
    monkeypatch.setattr(gpus_cli, "load_catalog", broken)
    code, out, err = run(capsys, monkeypatch, "gpus", "--json")
    assert code == INTERNAL_ERROR == 70
    assert out == ""
    assert "Traceback" not in err
    assert "internal error, a bug in coderig-deploy" in err and "KeyError: 'vram_mib'" in err
    saved = re.search(r"The traceback is in (\S+) ", err.replace("\n", " "))
    assert saved, err
    path = Path(saved.group(1))
    assert path.parent == no_debug
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "coderig-deploy gpus --json" in text
    assert "Traceback (most recent call last)" in text and "KeyError: 'vram_mib'" in text and "in broken" in text


def test_bug_message_is_escaped(capsys, monkeypatch, no_debug: Path) -> None:
    """An exception's text can hold a host's bytes: printed, never obeyed."""
    def broken(*_a: object, **_k: object) -> None:
        raise ValueError("bad \x1b]0;owned\x07 title")
    monkeypatch.setattr(gpus_cli, "load_catalog", broken)
    code, _out, err = run(capsys, monkeypatch, "gpus")
    assert code == 70
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;owned\\x07" in err


def test_traceback_file_unwritable_still_one_line(capsys, monkeypatch, no_debug: Path) -> None:
    monkeypatch.setenv("TMPDIR", str(no_debug / "missing"))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr("tempfile.gettempdir", lambda: str(no_debug / "missing"))

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom")
    monkeypatch.setattr(gpus_cli, "load_catalog", broken)
    code, _out, err = run(capsys, monkeypatch, "gpus")
    assert code == 70
    assert "RuntimeError: boom" in err and "CODERIG_DEBUG=1" in err and "Traceback" not in err


def test_debug_raises(capsys, monkeypatch, no_debug: Path) -> None:
    monkeypatch.setenv("CODERIG_DEBUG", "1")

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("boom")
    monkeypatch.setattr(gpus_cli, "load_catalog", broken)
    monkeypatch.setattr(sys, "argv", ["coderig-deploy", "gpus"])
    with pytest.raises(RuntimeError, match="boom"):
        main()
    assert not list(no_debug.iterdir()), "no traceback file when the traceback is shown"


@pytest.mark.parametrize(("exc", "text"), [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/x"), "/srv/x: Permission denied"),
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"), "/a -> /b: Invalid cross-device link"),
    (OSError("socket closed"), "socket closed"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", os.fsencode("/r\u00e9pertoire")),
     "/r\u00e9pertoire: No such file or directory"),
])
def test_os_error_text(exc: OSError, text: str) -> None:
    assert os_error_text(exc) == text
