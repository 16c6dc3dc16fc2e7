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
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from coderig_deploy.sandbox import HostSpec, Lab

CLI = str(Path(sys.executable).parent / "coderig-deploy")


def apply_once(lab: Lab, profile: str, runs: Path, with_bench: bool) -> dict[str, Any]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    started = time.monotonic()
    bench = [] if with_bench else ["--no-bench"]
    proc = subprocess.run([CLI, "apply", "--profile", profile, "--sandbox", "--json", "--runs-dir", str(runs), *bench],
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if not proc.stdout.strip().startswith("{"):
        raise SystemExit(f"apply failed (exit {proc.returncode}): {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    return {"exit": proc.returncode, "wall_s": round(seconds, 1),
            "changed": sum(h["changed"] for h in doc["hosts"]),
            "statuses": sorted({h["status"] for h in doc["hosts"]})}


def measure(size: int, profile: str, root: Path, with_bench: bool = False) -> dict[str, Any]:
    lab = Lab(Path(tempfile.mkdtemp(prefix=f"converge{size}-", dir=root)))
    try:
        boot_started = time.monotonic()
        lab.up([HostSpec(gpu="rtx-4090", count=2) for _ in range(size)], prefix="cv")
        boot = time.monotonic() - boot_started
        runs = lab.home / "runs"
        first = apply_once(lab, profile, runs, with_bench)
        rerun = apply_once(lab, profile, runs, with_bench)
    finally:
        lab.down()
        shutil.rmtree(lab.home, ignore_errors=True)
    return {"hosts": size, "boot_s": round(boot, 1), "first": first, "rerun": rerun}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--profile", default="dual-4090")
    parser.add_argument("--with-bench", action="store_true", help="include the smoke benchmark in each run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the sandbox boots hosts with systemd-nspawn: run as root")
    root = Path(os.environ.get("CODERIG_TEST_LABS", "/var/lib/coderig/test-labs"))
    root.mkdir(parents=True, exist_ok=True)
    rows = [measure(size, args.profile, root, args.with_bench) for size in args.sizes]
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
