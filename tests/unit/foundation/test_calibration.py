"""The fit model against the calibration measurements (benchmarks/calibration.tsv)."""

import statistics
from pathlib import Path

import pytest

from coderig_deploy.calibration import load_cases

CASES = load_cases(Path(__file__).parents[3] / "benchmarks" / "calibration.tsv")


def test_every_calibration_row_is_read():
    assert sum(c.kind == "vram" for c in CASES) == 5
    assert sum(c.kind == "decode" for c in CASES) == 23
    assert sum(c.kind == "prefill" for c in CASES) == 18


def test_held_out_sources_are_not_fit_sources():
    fit_sources = {c.source.split(" (")[0] for c in CASES if c.set == "fit"}
    held_out = {c.source.split(" (")[0] for c in CASES if c.set == "held-out"}
    assert held_out and not fit_sources & held_out


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "vram"], ids=lambda c: c.label)
def test_vram_within_5_percent(case):
    assert case.predicted() == pytest.approx(case.measured, rel=0.05)


@pytest.mark.parametrize("kind", ["decode", "prefill"])
@pytest.mark.parametrize("subset", ["fit", "held-out"])
def test_speed_median_error(kind, subset):
    # Regression bounds at today's fit (benchmarks/fit_accuracy.py prints the tables): the goal is
    # 10 %; held-out prefill has only two rows, and its 32B row comes from a late-2024 build whose int8 (MMQ)
    # kernels are faster than the June 2024 ones of the fit rows.
    bound = 0.15 if (kind, subset) == ("prefill", "held-out") else 0.10
    errors = [abs(c.error) for c in CASES if c.kind == kind and c.set == subset]
    assert statistics.median(errors) < bound


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "decode"], ids=lambda c: f"{c.set} {c.label}")
def test_decode_within_15_percent(case):
    # The worst decode row is ~11 % off (benchmarks/fit_accuracy.py).
    assert case.predicted() == pytest.approx(case.measured, rel=0.15)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "prefill"], ids=lambda c: f"{c.set} {c.label}")
def test_prefill_within_20_percent(case):
    # The worst prefill rows are ~19 % off (benchmarks/fit_accuracy.py): 70B on 2x RTX 3090 and the
    # held-out 32B on an RTX 3090; the long-prompt rows without flash attention are within 3 %.
    assert case.predicted() == pytest.approx(case.measured, rel=0.20)


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "prefill" and c.ctx >= 8192],
                         ids=lambda c: c.label)
def test_long_prompt_prefill_within_10_percent(case):
    # pp8192 without flash attention: attention over every cell and the score matrix's traffic.
    assert case.predicted() == pytest.approx(case.measured, rel=0.10)
