"""Size of the probe's generated GGUF (computed, nothing written) against every published
file size in coderig_deploy/data/gguf_sizes.tsv.

    python benchmarks/probe_sizes.py
"""

from __future__ import annotations

import argparse

from coderig_deploy.catalog import load_catalog
from coderig_deploy.probe import gguf
from coderig_deploy.probe.remote import probe_name, shape_of


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    catalog = load_catalog()
    print(f"{'model':<22} {'quant':<7} {'probe GB':>9} {'published':>9} {'diff':>7}")
    worst = 0.0
    for tag in catalog.model_tags():
        choice = catalog.model(tag)
        key, quant = choice.model.key, choice.quant.quant
        if choice.size_source != "published":
            continue
        published = choice.file_bytes
        size = gguf.planned_size(shape_of(choice), quant, probe_name(choice))
        diff = (size - published) / published
        worst = max(worst, abs(diff))
        print(f"{key:<22} {quant:<7} {size / 1e9:>9.3f} {published / 1e9:>9.3f} {diff:>+7.2%}")
    print(f"largest difference: {worst:.2%} (goal: within 1%)")
    return 0 if worst < 0.01 else 1


if __name__ == "__main__":
    raise SystemExit(main())
