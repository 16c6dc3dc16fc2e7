#!/usr/bin/env python3
"""Ollama as a container against Ollama as a service: first-run and rerun wall time on the same hosts.

Boots a throwaway lab with two docker-capable hosts (one simulated RTX 4070 each),
applies the native budget profile to one and the same profile with
`ollama.runtime: docker` to the other, each twice (a first run, then an idempotent
rerun), and prints the times and the docker/native ratios. `--repeat N` boots a
fresh lab N times, swapping which host gets which runtime each time, and prints the
median ratios. The two runs of each pair follow each other, so they see about the
same machine load; the load average before each run is printed. Needs root.

    .venv/bin/python benchmarks/container_vs_native.py [--repeat 1] [--no-bench] [--json]

The docker profile comes from tests/unit/container/profiles (its image digest is
replaced by the sandbox image's pin, as in the integration test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from _lab import apply, labs_root, throwaway_lab

from coderig_deploy.sandbox import HostSpec, Lab

PROFILES = Path(__file__).resolve().parents[1] / "tests" / "unit" / "container" / "profiles"
RUNTIMES = {"native": ("--profile", "budget-4070"),
            "docker": ("--profile", "budget-4070-docker", "--profiles-dir", str(PROFILES))}


def timed(lab: Lab, runtime: str, host: str, bench: bool) -> dict[str, Any]:
    load = os.getloadavg()[0]
    code, doc, seconds = apply(lab, *RUNTIMES[runtime], *([] if bench else ["--no-bench"]), host)
    if code != 0:
        raise SystemExit(f"{runtime} apply on {host} failed (exit {code}): {doc['hosts']}")
    return {"wall_s": round(seconds, 1), "load1": round(load, 1), "changed": sum(h["changed"] for h in doc["hosts"])}


def measure(round_no: int, bench: bool) -> dict[str, Any]:
    names = ("ca", "cb")
    specs = [HostSpec(name=n, gpu="rtx-4070", count=1, docker=True) for n in names]
    with throwaway_lab(specs, f"container{round_no}") as (lab, boot):
        order = ("native", "docker") if round_no % 2 == 0 else ("docker", "native")
        host = dict(zip(order, names, strict=True))
        runs = {rt: {"first": timed(lab, rt, host[rt], bench), "rerun": timed(lab, rt, host[rt], bench)}
                for rt in order}
    ratios = {kind: round(runs["docker"][kind]["wall_s"] / runs["native"][kind]["wall_s"], 2)
              for kind in ("first", "rerun")}
    return {"boot_s": round(boot, 1), "runs": runs, "docker_over_native": ratios}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="fresh labs to measure (median ratios printed)")
    parser.add_argument("--no-bench", action="store_true", help="leave the smoke benchmark out of each run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    labs_root()
    rounds = [measure(n, not args.no_bench) for n in range(args.repeat)]
    medians = {kind: round(statistics.median(r["docker_over_native"][kind] for r in rounds), 2)
               for kind in ("first", "rerun")}
    if args.json:
        print(json.dumps({"rounds": rounds, "median_docker_over_native": medians}, indent=2))
        return 0
    print(f"1x simulated rtx-4070 per host, {os.cpu_count()} CPUs, "
          f"{'without' if args.no_bench else 'with'} the smoke benchmark")
    print(f"{'round':>5} {'runtime':<7} {'first s':>8} {'load':>5} {'rerun s':>8} {'load':>5} {'chg':>4}")
    for n, r in enumerate(rounds):
        for runtime, run in r["runs"].items():
            first, rerun = run["first"], run["rerun"]
            print(f"{n:>5} {runtime:<7} {first['wall_s']:>8} {first['load1']:>5} "
                  f"{rerun['wall_s']:>8} {rerun['load1']:>5} {rerun['changed']:>4}")
        ratio = r["docker_over_native"]
        print(f"{n:>5} docker/native: first {ratio['first']}, rerun {ratio['rerun']}")
    print(f"median docker/native over {len(rounds)} round(s): first {medians['first']}, rerun {medians['rerun']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
