#!/usr/bin/env python3
"""Compare the fit model with every calibration measurement: one table for the rows the constants
were fitted on, one for the held-out rows (other sources), each with median and worst error, and one
for the seed guide's rounded estimates (set=seed: not measurements, counted in neither); then the usable memory
of every card data/driver_reserved.tsv measures against the plan's.

    python benchmarks/fit_accuracy.py [CALIBRATION.tsv]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from coderig_deploy.calibration import SETS, Case, load_cases, usable_cases

DEFAULT = Path(__file__).with_name("calibration.tsv")
UNITS = {"vram": "MiB", "decode": "tok/s", "prefill": "tok/s"}


def _table(name: str, cases: list[Case]) -> None:
    print(f"== {name} rows ==")
    print(f"{'kind':7} {'case':58} {'measured':>9} {'predicted':>9} {'error':>7}")
    for c in cases:
        print(f"{c.kind:7} {c.label[:58]:58} {c.measured:9.1f} {c.predicted():9.1f} {c.error:+7.1%}  {UNITS[c.kind]}")
    for kind in UNITS:
        errors = [abs(c.error) for c in cases if c.kind == kind]
        if errors:
            print(f"  {kind:7}: {len(errors):2} rows, median |error| {statistics.median(errors):5.1%}, "
                  f"max {max(errors):5.1%}")
    print()


def _usable_table() -> None:
    print("== usable memory: CUDA's own total on Linux (data/driver_reserved.tsv) against the plan's ==")
    print(f"{'gpu':20} {'memory.total':>12} {'CUDA':>9} {'planned':>9} {'error':>7}  MiB")
    cases = usable_cases()
    for c in cases:
        print(f"{c.gpu:20} {c.total_mib:12} {c.cuda_mib:9.0f} {c.planned_mib:9} {c.error_mib:+7.0f}")
    errors = [abs(c.error_mib) for c in cases]
    print(f"  {len(errors)} cards, median |error| {statistics.median(errors):.0f} MiB, max {max(errors):.0f} MiB")
    print()


def main(path: Path) -> int:
    cases = load_cases(path)
    for subset in SETS:
        _table(subset, [c for c in cases if c.set == subset])
    _usable_table()
    return 0


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calibration", nargs="?", type=Path, default=DEFAULT,
                        help=f"calibration table (default: {DEFAULT.name} beside this script)")
    args = parser.parse_args()
    if not args.calibration.is_file():
        parser.error(f"no such file: {args.calibration}")
    return args


if __name__ == "__main__":
    sys.exit(main(_args().calibration))
