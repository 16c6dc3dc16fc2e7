"""Summary statistics of repeated runs."""

import math

import pytest

from coderig_deploy.bench.stats import summarize


def test_known_values() -> None:
    s = summarize([10.0, 12.0, 11.0, 13.0, 9.0])
    assert s["n"] == 5
    assert s["mean"] == pytest.approx(11.0)
    assert s["median"] == 11.0
    assert s["stdev"] == pytest.approx(math.sqrt(2.5))  # sample stdev, n-1
    assert (s["min"], s["max"]) == (9.0, 13.0)


def test_even_count_median_is_midpoint() -> None:
    assert summarize([1.0, 2.0, 3.0, 10.0])["median"] == 2.5


def test_single_run_has_zero_spread() -> None:
    s = summarize([42.0])
    assert (s["n"], s["mean"], s["stdev"]) == (1, 42.0, 0.0)


def test_empty_is_unknown_not_zero() -> None:
    s = summarize([])
    assert s["n"] == 0 and s["mean"] is None and s["median"] is None and s["stdev"] is None
