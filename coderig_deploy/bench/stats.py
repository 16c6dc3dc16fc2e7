"""Summary statistics of repeated measurements (llama-bench reports mean and stdev)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return n, mean, median, stdev (sample), min and max of `values`.

    An empty sequence gives n=0 and None elsewhere; one value gives stdev 0.0
    (a single run has no spread to report, which is not the same as unknown).
    """
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "median": None, "stdev": None, "min": None, "max": None}
    return {
        "n": n,
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stdev": statistics.stdev(values) if n > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }
