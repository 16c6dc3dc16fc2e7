"""The smoke benchmark's own overhead: everything but model generation.

Runs the Ollama simulator locally with CODERIG_SIM_TIME_SCALE=0.001 (it reports the
simulated durations but sleeps a thousandth of them; 0 is not accepted), so the
wall time of a whole benchmark minus scale x the server-reported time is what the
benchmark itself costs plus the simulator's CPU time: an upper bound on the
overhead a real host pays on top of loading and generation. Then times the parts apart:
zipapp start-up, isolation probe, one code-check sandbox run, the nvidia-smi GPU
probe (the sandbox's simulated nvidia-smi) and one HTTP request.

On a real host the result JSON's "timing" block gives the same figure directly:
overhead_s = wall_s - server_s (server-reported durations plus the preload).

Usage: .venv/bin/python benchmarks/bench_overhead.py [--repeat 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from coderig_deploy.bench import codecheck, gpumem
from coderig_deploy.bench.ollama_api import OllamaClient
from coderig_deploy.bench.pyz import build_pyz
from coderig_deploy.bench.tasks import load_tasks
from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import gpu_sim
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.ollama_sim.store import Store
from coderig_deploy.sandbox.release import catalog_facts
from coderig_deploy.sandbox.synthetic_models import build

MODEL = "qwen2.5-coder:32b-instruct-q4_K_M"
SCALE = 0.001
SIM_GPU = Path(gpu_sim.__file__).resolve().parent / "gpu" / "nvidia_smi.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(tmp: Path, port: int) -> dict[str, str]:
    (tmp / "gpus.json").write_text(json.dumps(
        gpu_sim.gpus_document(load_catalog().gpu("rtx-4090"), 1, "overhead")))
    (tmp / "catalog.json").write_text(json.dumps(catalog_facts()))
    store = Store(tmp / "models")
    store.ensure()
    model = build(load_catalog().model(MODEL))
    for digest, data in model.blobs.items():
        store.write_blob(digest, io.BytesIO(data), len(data))
    store.write_manifest(parse(MODEL), model.manifest)
    bindir = tmp / "bin"
    bindir.mkdir()
    (bindir / "nvidia-smi").write_text(f'#!/bin/sh\nexec {sys.executable} {SIM_GPU} "$@"\n')
    (bindir / "nvidia-smi").chmod(0o755)
    return {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(tmp / "models"),
            "CODERIG_SIM_GPUS": str(tmp / "gpus.json"), "CODERIG_SIM_USAGE": str(tmp / "usage.json"),
            "CODERIG_SIM_FAULTS": str(tmp / "faults.json"), "CODERIG_SIM_CATALOG": str(tmp / "catalog.json"),
            "CODERIG_SIM_TIME_SCALE": str(SCALE), "OLLAMA_CONTEXT_LENGTH": "8192", "PATH": f"{bindir}:{os.environ['PATH']}"}


def _wait(url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/api/version", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the simulator did not start")


def _timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _row(name: str, values: list[float]) -> None:
    print(f"{name:<52} median {statistics.median(values) * 1000:9.1f} ms"
          f"   min {min(values) * 1000:9.1f}   max {max(values) * 1000:9.1f}   (n={len(values)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        port = _free_port()
        env = _environment(tmp, port)
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "coderig_deploy.sandbox.ollama_sim", "serve"],
                                  env=env, stderr=open(tmp / "sim.log", "w"))
        try:
            _wait(url)
            _measure(tmp, env, url, args)
        finally:
            server.terminate()
            server.wait()


def _measure(tmp: Path, env: dict[str, str], url: str, args: argparse.Namespace) -> None:
    pyz = build_pyz(tmp / "coderig-bench.pyz")
    cmd = ["/usr/bin/python3", str(pyz), "--model", MODEL, "--url", url, "--runs", str(args.runs),
           "--gpu-probe", "nvidia-smi"]
    print(f"host: {socket.gethostname()}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}; "
          f"simulator at time scale {SCALE}")
    results = []
    def whole() -> None:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        results.append(json.loads(proc.stdout))
    walls = _timed(whole, args.repeat)
    _row(f"whole benchmark wall, {args.runs} runs + warm-up + 4 code tasks", walls)
    last = results[-1]
    sleeps = [r["timing"]["server_s"] * SCALE for r in results]
    _row("  minus the simulator's scaled sleeps = overhead", [w - s for w, s in zip(walls, sleeps)])
    assert last["error"] is None, (last["error"], (tmp / "sim.log").read_text()[-2000:])
    print(f"  (its JSON: {len(last['runs'])} runs, simulated decode "
          f"{last['summary']['decode_tok_s']['median']:.1f} tok/s, server-reported generation "
          f"{last['timing']['server_s']:.1f} s that a real GPU would spend; ps: {last['ps']})")
    _row("zipapp start-up (python3 coderig-bench.pyz --help)", _timed(
        lambda: subprocess.run(["/usr/bin/python3", str(pyz), "--help"], capture_output=True), args.repeat))
    _row("isolation probe (unshare/setpriv availability)", _timed(codecheck.detect_isolation, args.repeat))
    iso = codecheck.detect_isolation()
    task = load_tasks()[0]
    _row(f"one code-check sandbox run ({iso[0]})", _timed(
        lambda: codecheck.run_check(task.id, task.reference, task.tests, 10, iso), args.repeat * 3))
    os.environ["PATH"] = env["PATH"]
    os.environ["CODERIG_SIM_GPUS"], os.environ["CODERIG_SIM_USAGE"] = env["CODERIG_SIM_GPUS"], env["CODERIG_SIM_USAGE"]
    _row("GPU probe via nvidia-smi (simulated binary)", _timed(lambda: gpumem.probe("nvidia-smi"), args.repeat * 3))
    client = OllamaClient(url)
    _row("one HTTP request (GET /api/ps) incl. JSON parse", _timed(lambda: client.get("/api/ps"), args.repeat * 10))


if __name__ == "__main__":
    main()
