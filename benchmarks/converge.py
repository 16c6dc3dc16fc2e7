#!/usr/bin/env python3
"""Wall time of `coderig-deploy apply` on sandbox hosts: a first run and an idempotent rerun.

Boots a throwaway lab per size (1 and 3 hosts by default, each with 2 simulated
RTX 4090s), applies `dual-4090` twice through the CLI, prints one row per size and
tears the lab down. Needs root (the sandbox boots hosts with systemd-nspawn).

    .venv/bin/python benchmarks/converge.py [--sizes 1 3] [--profile dual-4090] [--with-bench] [--json]

By default the smoke benchmark is left out (`apply --no-bench`): it generates for a
fixed number of tokens at the simulated GPU's speed, the same cost on every run, and
would hide what convergence itself costs. `--with-bench` includes it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from _lab import apply, labs_root, throwaway_lab

from coderig_deploy.sandbox import HostSpec, Lab


def apply_once(lab: Lab, profile: str, with_bench: bool) -> dict[str, Any]:
    code, doc, seconds = apply(lab, "--profile", profile, *([] if with_bench else ["--no-bench"]))
    return {"exit": code, "wall_s": round(seconds, 1),
            "changed": sum(h["changed"] for h in doc["hosts"]),
            "statuses": sorted({h["status"] for h in doc["hosts"]})}


def measure(size: int, profile: str, with_bench: bool = False) -> dict[str, Any]:
    with throwaway_lab([HostSpec(gpu="rtx-4090", count=2) for _ in range(size)], f"converge{size}") as (lab, boot):
        first = apply_once(lab, profile, with_bench)
        rerun = apply_once(lab, profile, with_bench)
    return {"hosts": size, "boot_s": round(boot, 1), "first": first, "rerun": rerun}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--profile", default="dual-4090")
    parser.add_argument("--with-bench", action="store_true", help="include the smoke benchmark in each run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    labs_root()
    rows = [measure(size, args.profile, args.with_bench) for size in args.sizes]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    bench = "with" if args.with_bench else "without"
    print(f"profile {args.profile}, {os.cpu_count()} CPUs; each host has 2 simulated RTX 4090; {bench} the smoke benchmark")
    print(f"{'hosts':>5} {'boot s':>7} {'first run s':>12} {'changed':>8} {'rerun s':>8} {'changed':>8}  status")
    for r in rows:
        f, s = r["first"], r["rerun"]
        print(f"{r['hosts']:>5} {r['boot_s']:>7} {f['wall_s']:>12} {f['changed']:>8} {s['wall_s']:>8} "
              f"{s['changed']:>8}  {'/'.join(f['statuses'])} -> {'/'.join(s['statuses'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
