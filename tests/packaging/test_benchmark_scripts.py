"""Every benchmark script answers --help with its usage, without running the benchmark."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


def test_the_benchmarks_directory_has_scripts():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_usage_and_exits_0(script):
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                       cwd=BENCHMARKS.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: "), r.stdout[:200]


def test_fit_accuracy_names_a_missing_table():
    r = subprocess.run([sys.executable, str(BENCHMARKS / "fit_accuracy.py"), "no-such.tsv"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert "no such file: no-such.tsv" in r.stderr
    assert "Traceback" not in r.stderr
