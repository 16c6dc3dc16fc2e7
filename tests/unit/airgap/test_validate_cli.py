"""`validate --airgapped` refuses bad input with exit 2 and one line, before any host is contacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coderig_deploy", "validate", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=cwd)


@pytest.mark.parametrize(("args", "message"), [
    (["--bundle", "b", "192.0.2.10"], "validate needs a mode: give --airgapped"),
    (["--airgapped", "--bundle", "b"], "give HOST arguments or --sandbox (one of the two)"),
    (["--airgapped", "--bundle", "b", "--sandbox", "192.0.2.10"], "give HOST arguments or --sandbox"),
    (["--airgapped", "--bundle", "b", "--registry", "mirror", "192.0.2.10"], "--registry 'mirror': expected host:port"),
    (["--airgapped", "--bundle", "nowhere", "192.0.2.10"], "nowhere: not a directory"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "b").mkdir()
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / ".coderig").exists()
