#!/usr/bin/env python3
"""Compare the fit model with every calibration measurement and print the errors.

    python benchmarks/fit_accuracy.py [CALIBRATION.tsv]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from coderig_deploy.calibration import load_cases

DEFAULT = Path(__file__).with_name("calibration.tsv")


def main(path: Path) -> int:
    cases = load_cases(path)
    print(f"{'kind':5} {'case':62} {'measured':>10} {'predicted':>10} {'error':>8}")
    errors: dict[str, list[float]] = {"vram": [], "speed": []}
    for case in cases:
        predicted = case.predicted()
        error = predicted / case.measured - 1
        errors[case.kind].append(error)
        unit = "MiB" if case.kind == "vram" else "tok/s"
        print(f"{case.kind:5} {case.label[:62]:62} {case.measured:10.1f} {predicted:10.1f} {error:+8.1%}  {unit}")
    print()
    for kind, errs in errors.items():
        absolute = [abs(e) for e in errs]
        print(f"{kind:5}: {len(errs)} rows, median |error| {statistics.median(absolute):.1%}, worst {max(absolute):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT))
