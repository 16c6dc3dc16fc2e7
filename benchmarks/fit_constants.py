#!/usr/bin/env python3
"""Search the engine and quant constants on the `fit` rows of calibration.tsv (never the held-out ones).

    python benchmarks/fit_constants.py [--prefill-only]

Prints the constants that minimise the root-mean-square log error over the fit rows of each kind
(decode of the 2023-2024 builds, then the current builds' per-layer latency on their own decode rows with the rest
fixed: flat microseconds, then thousands of GPU clock cycles; then prefill, with the per-architecture power figures of
gpu_architectures.tsv); copy them into coderig_deploy/data/{engines,quants,gpu_architectures}.tsv by hand.
--prefill-only skips the decode searches and fits prefill with the decode constants the data files hold.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterable
from pathlib import Path

from coderig_deploy.calibration import load_cases
from coderig_deploy.catalog import EngineSpec, load_catalog

CALIBRATION = Path(__file__).with_name("calibration.tsv")


OLD_BUILD = "llama.cpp-2023-12"  # its own per-layer latency (no CUDA graphs), everything else shared
# Current builds (llama.cpp master since late 2025, and Ollama, which runs its llama-server): their own per-layer
# latency, fitted on their own decode rows after the 2024 builds' constants (kernel fusion shortened a layer's steps).
CURRENT = ("llama.cpp", "ollama")
# FlashAttention's efficiency is fitted for the current builds only: the fit rows measured with flash
# attention on are all current builds (llama.cpp#24127, #17505, #20586); the 2024 engines keep 0
# (their FA kernels predate the mma ones and no fit row of theirs has FA on).
CURRENT_ONLY = ("fa_efficiency",)
# Architectures whose board energy per SM clock of tensor work (gpu_architectures.tsv tensor_nj_per_sm_cycle) is
# fitted: those with prefill fit rows on cards that can reach their power limit. The grid: 0 (no limit) and 1-12 nJ.
POWER_FITTED = ("nj_ampere", "nj_ampere-dc", "nj_ada", "nj_hopper")
POWER_GRID = (0.0, *(x / 10 for x in range(10, 121, 1)))


def _set(**values: float) -> None:
    catalog = load_catalog()
    for name, spec in list(catalog.engines.items()):
        update = {k: v for k, v in values.items() if k in EngineSpec.model_fields}
        if name not in CURRENT:
            update = {k: v for k, v in update.items() if k not in CURRENT_ONLY}
        if name == OLD_BUILD and "old_latency_us" in values:
            update["per_layer_latency_us"] = values["old_latency_us"]
        if name in CURRENT:
            update.pop("per_layer_latency_us", None)
            if "current_latency_us" in values:
                update["per_layer_latency_us"] = values["current_latency_us"]
        else:
            update.pop("layer_latency_kcycles", None)
        if spec.prefill_path == "mmq" and "mmq_prefill_layer_us" in values:
            update["prefill_layer_us"] = values["mmq_prefill_layer_us"]
        catalog.engines[name] = EngineSpec.model_validate({**spec.model_dump(), **update})
    for arch, nj in values.items():
        if arch.startswith("nj_"):
            key = arch.removeprefix("nj_")
            catalog.architectures[key] = catalog.architectures[key].model_copy(update={"tensor_nj_per_sm_cycle": nj})
    if "q4_ops" in values:
        for q in ("Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"):
            catalog.quants[q] = catalog.quants[q].model_copy(update={"decode_ops_per_weight": values["q4_ops"]})


def _worst(cases: list, kind: str) -> float:
    """Root mean square of log errors: every row counts, none is allowed to dominate the fit."""
    logs = [math.log1p(c.error) ** 2 for c in cases if c.kind == kind]
    return math.sqrt(sum(logs) / len(logs))


def _best(grid: Iterable[dict[str, float]], cases: list, kind: str) -> tuple[float, dict[str, float]]:
    """The constants of `grid` with the smallest error on `cases` of `kind`, left set in the catalog."""
    best: tuple[float, dict[str, float]] = (math.inf, {})
    for values in grid:
        _set(**values)
        best = min(best, (_worst(cases, kind), values), key=lambda b: b[0])
    _set(**best[1])
    return best


def main() -> int:
    cases = [c for c in load_cases(CALIBRATION) if c.set == "fit"]
    if "--prefill-only" not in sys.argv[1:]:
        _fit_decode(cases)
    _fit_prefill(cases)
    return 0


def _fit_decode(cases: list) -> None:
    older = [c for c in cases if c.engine not in CURRENT]
    current = [c for c in cases if c.engine in CURRENT]
    best = _best((dict(bandwidth_efficiency=eff, per_layer_latency_us=lat, old_latency_us=old,
                       kv_read_factor_fa_off=kvf, q4_ops=ops)
                  for eff, lat, old, kvf, ops in itertools.product((0.88, 0.9, 0.92, 0.94), (70, 80, 90, 100),
                                                                    (140, 170, 200, 230), (2.5, 3.0, 3.5, 4.0),
                                                                    (3, 3.5, 4, 4.5))), older, "decode")
    print(f"decode, 2023-2024 builds: rms log error {best[0]:.1%} with {best[1]}")
    # bandwidth_efficiency stays shared: the only rows that could separate it from the latency (RTX 3090, depth
    # 256 against depth 33024) separate mmvq's weight read from FlashAttention's KV-cache read instead.
    # Current builds replay a token as a CUDA graph: their per-layer latency is GPU time in core clock cycles
    # (fit.layer_latency_s). The flat microseconds are the fallback for a GPU whose clock is unknown (and for
    # layers left on the CPU): fitted first with the cycles off, then the cycles.
    flat = _best((dict(current_latency_us=lat, layer_latency_kcycles=0) for lat in range(10, 102, 2)),
                 current, "decode")
    flat_us = {"current_latency_us": flat[1]["current_latency_us"]}
    print(f"decode, current builds, flat latency: rms log error {flat[0]:.1%} with {flat_us}")
    now = _best(({**flat_us, "layer_latency_kcycles": k} for k in range(20, 242, 2)), current, "decode")
    print(f"decode, current builds, latency in clock cycles: rms log error {now[0]:.1%} with {now[1]}")


def _fit_prefill(cases: list) -> None:
    catalog = load_catalog()
    fa = {"fa_efficiency": float(catalog.engines[CURRENT[0]].fa_efficiency)}
    power = {f"nj_{a}": float(spec.tensor_nj_per_sm_cycle) for a, spec in catalog.architectures.items()}
    # The board energy per SM clock of tensor work (fit.power_limited_rate) of each architecture that has fit
    # rows: each one moves only its own architecture's rows, so it is searched alone, 0 (no power limit) included.
    fitted_power = [a for a in POWER_FITTED if any(catalog.gpus[g].architecture == a.removeprefix("nj_")
                                                    for c in cases if c.kind == "prefill" for g in c.gpus)]
    # The MMQ builds' own per-layer prefill time (June 2024 and current builds) is fitted on their own prefill rows:
    # the cuBLAS path of the older builds launches more kernels per product (each input converted to f16, each
    # result back to f32, the weights dequantized) than MMQ, which quantizes the input to q8_1 and writes f32.
    mmq_engines = [n for n, e in catalog.engines.items() if e.prefill_path == "mmq"]
    current = [c for c in cases if c.engine in mmq_engines]
    now = {"mmq_prefill_layer_us": float(catalog.engines[CURRENT[0]].prefill_layer_us)}
    for _ in range(5):  # coordinate descent: GEMM constants, FlashAttention's, the power figures, the MMQ
        #                 builds' per-layer time, until all settle
        gemm = _best((dict(prefill_efficiency=eff, mmq_efficiency=mmq, prefill_layer_us=lat, **fa, **power, **now)
                      for eff, mmq, lat in itertools.product([x / 100 for x in range(40, 92, 2)],
                                                             [x / 100 for x in range(16, 42, 2)], (0, 100, 200, 400))),
                     cases, "prefill")
        best_pp = _best(({**gemm[1], "fa_efficiency": x / 100} for x in range(10, 92, 2)), cases, "prefill")
        for arch in fitted_power:
            best_pp = _best(({**best_pp[1], arch: nj} for nj in POWER_GRID), cases, "prefill")
        best_pp = _best(({**best_pp[1], "mmq_prefill_layer_us": lat} for lat in range(0, 410, 10)), current,
                        "prefill")
        previous = (fa, power, now)
        fa = {"fa_efficiency": best_pp[1]["fa_efficiency"]}
        power = {a: best_pp[1][a] for a in power}
        now = {"mmq_prefill_layer_us": best_pp[1]["mmq_prefill_layer_us"]}
        if (fa, power, now) == previous:
            break
    print(f"prefill: rms log error {_worst(cases, 'prefill'):.1%} with {best_pp[1]} (the MMQ builds' rows: "
          f"{_worst(current, 'prefill'):.1%})")
    for arch in POWER_FITTED:  # the fitted energies per delivered FP16 FLOP, for the comparison across architectures
        flops = catalog.architectures[arch.removeprefix("nj_")].fp16_tensor_flops_per_clk
        print(f"  {arch.removeprefix('nj_')}: {best_pp[1][arch]} nJ per SM clock = "
              f"{best_pp[1][arch] * 1e3 / flops:.2f} pJ per FP16 FLOP")

if __name__ == "__main__":
    sys.exit(main())
