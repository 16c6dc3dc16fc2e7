"""The fit model against the calibration measurements (benchmarks/calibration.tsv)."""

from pathlib import Path

import pytest

from coderig_deploy.calibration import load_cases

CASES = load_cases(Path(__file__).parents[3] / "benchmarks" / "calibration.tsv")


def test_every_calibration_row_is_read():
    assert sum(c.kind == "vram" for c in CASES) == 5
    assert sum(c.kind == "speed" for c in CASES) == 6


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "vram"], ids=lambda c: c.label)
def test_vram_within_5_percent(case):
    assert case.predicted() == pytest.approx(case.measured, rel=0.05)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "speed"], ids=lambda c: c.label)
def test_speed_within_10_percent(case):
    assert case.predicted() == pytest.approx(case.measured, rel=0.10)
