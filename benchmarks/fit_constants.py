#!/usr/bin/env python3
"""Search the engine and quant constants on the `fit` rows of calibration.tsv (never the held-out ones).

    python benchmarks/fit_constants.py [--prefill-only]

Prints the constants that minimise the root-mean-square log error over the fit rows of each kind
(decode of the 2023-2024 builds, then the current builds' per-layer latency on their own decode rows with the rest
fixed: flat microseconds, then thousands of GPU clock cycles; their bytes in flight on their data-center rows; then
prefill, with the score matrix's SM time and the per-architecture power figures of gpu_architectures.tsv); copy them
into coderig_deploy/data/{engines,quants,gpu_architectures}.tsv by hand.
--prefill-only skips the decode searches and fits prefill with the decode constants the data files hold.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from coderig_deploy.calibration import load_cases
from coderig_deploy.catalog import EngineSpec, load_catalog

CALIBRATION = Path(__file__).with_name("calibration.tsv")


OLD_BUILD = "llama.cpp-2023-12"  # its own per-layer latency (no CUDA graphs), everything else shared
# Current builds (llama.cpp master since late 2025, and Ollama, which runs its llama-server): their own per-layer
# latency, fitted on their own decode rows after the 2024 builds' constants (kernel fusion shortened a layer's steps).
CURRENT = ("llama.cpp", "ollama")
# FlashAttention's efficiency is fitted for the current builds only: the fit rows measured with flash
# attention on are all current builds (llama.cpp#24127, #17505, #20586, the scoreboard's A100 and H100); the 2024
# engines keep 0 (their FA kernels predate the mma ones and no fit row of theirs has FA on). So is the score matrix's
# SM time without it (score_sm_cycles): only current builds' rows measure the same prompt with and without.
CURRENT_ONLY = ("fa_efficiency", "moe_layer_kcycles", "score_sm_cycles")
# Architectures whose board energy per SM clock of tensor work (gpu_architectures.tsv tensor_nj_per_sm_cycle) is
# fitted: those with prefill fit rows on cards that can reach their power limit. The grid: 0 (no limit) and 1-12 nJ.
POWER_FITTED = ("nj_ampere", "nj_ampere-dc", "nj_ada", "nj_hopper")
POWER_GRID = (0.0, *(x / 10 for x in range(10, 121, 1)))
# The cuBLAS-path builds' per-layer prefill time in thousands of core clock cycles (fit.prefill_layer_s): 0 to 400 us
# at 1800 MHz.
LAYER_KCYCLES_GRID = (0, 180, 360, 450, 540, 630, 720)


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
            if "current_inflight_kib" in values:
                update["inflight_kib_per_sm"] = values["current_inflight_kib"]
        else:
            update.pop("layer_latency_kcycles", None)
        if spec.prefill_path == "mmq" and "mmq_prefill_layer_kcycles" in values:
            update["prefill_layer_kcycles"] = values["mmq_prefill_layer_kcycles"]
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


def _search(grid: Iterable[dict[str, float]], error: Callable[[], float]) -> tuple[float, dict[str, float]]:
    """The constants of `grid` with the smallest `error()` (computed with them set), left set in the catalog."""
    best: tuple[float, dict[str, float]] = (math.inf, {})
    for values in grid:
        _set(**values)
        best = min(best, (error(), values), key=lambda b: b[0])
    _set(**best[1])
    return best


def _best(grid: Iterable[dict[str, float]], cases: list, kind: str) -> tuple[float, dict[str, float]]:
    """The constants of `grid` with the smallest error on `cases` of `kind`, left set in the catalog."""
    return _search(grid, lambda: _worst(cases, kind))


H200_MODELS = ("qwen2.5-coder:7b-instruct-q4_K_M", "llama3.1:8b-instruct-q4_K_M", "qwen2.5-coder:32b-instruct-q4_K_M",
               "llama3.1:70b-instruct-q4_K_M")
HBM_ARCHITECTURES = ("ampere-dc", "hopper", "blackwell-dc")  # data-center GPUs: HBM behind a long latency


def _h200_shares() -> list[float]:
    from coderig_deploy.planner import make_plan

    shares = []
    for tag in H200_MODELS:
        plan = make_plan(tag, ["h200"], 4096)
        shares.append(plan.decode_tok_s * plan.weights_mib * (1 << 20) / 4800e9)
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefill-only", action="store_true",
                        help="fit prefill only, with the decode constants the data files hold")
    args = parser.parse_args()
    cases = [c for c in load_cases(CALIBRATION) if c.set == "fit"]
    if not args.prefill_only:
        _fit_decode(cases)
    _fit_prefill(cases)
    return 0


def _is_moe(case) -> bool:
    return bool(load_catalog().model(case.model_tag).model.experts)


def _fit_decode(cases: list) -> None:
    older = [c for c in cases if c.engine not in CURRENT]
    current_all = [c for c in cases if c.engine in CURRENT]
    dense = [c for c in current_all if not _is_moe(c)]
    # The current builds' dense rows on data-center GPUs fit their bytes in flight (below); the others, on GDDR cards
    # where that ceiling does not bind, their per-layer latency. (Refitted jointly, the cycles stay 88.)
    gpus = load_catalog().gpus
    hbm_rows = [c for c in dense if all(gpus[g].architecture in HBM_ARCHITECTURES for g in c.gpus)]
    current = [c for c in dense if c not in hbm_rows]
    # Decode of the 2023-2024 builds. bandwidth_efficiency is not searched here: prefill shares it (the weights' read
    # per ubatch, the FP16 copy, the score matrix's traffic), and decode rows do not resolve it once the bytes-in-flight
    # ceiling exists (0.94 gives 5.81 % against 5.85 % at 0.92 with a flat KV factor). q4_ops is the integer-compute
    # ceiling's work per weight: every value from 0 to 5 gives the same error (the ceiling binds on no fit row once
    # inflight_kib_per_sm does), so the first of the grid, 0 (not modelled), is kept; 6 and more make it worse.
    # inflight_kib_per_sm (fit.decode_bandwidth) and kv_l2_pass_share (fit.kv_read_factor) are shared by every build
    # (until the current builds' own value is fitted on their data-center rows, below).
    best = _best((dict(bandwidth_efficiency=0.92, per_layer_latency_us=lat, old_latency_us=old, kv_l2_pass_share=kvp,
                       q4_ops=ops, inflight_kib_per_sm=kib)
                  for lat, old, kvp, ops, kib in itertools.product((80, 85, 90, 95, 100), (80, 100, 120, 140, 160),
                                                                   (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), (0, 4.5, 6),
                                                                   (3.5, 3.625, 3.75, 3.875, 4.0, 4.25))),
                 older, "decode")
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
    # A mixture of experts' layer runs more small kernels than a dense one (fit.layer_latency_s): their extra cycles,
    # fitted on the current builds' MoE decode rows alone, after the dense layer's cycles (the MoE rows are left out
    # of that fit: experts 0 makes them a different layer).
    moe_rows = [c for c in current_all if _is_moe(c)]
    moe = _best(({**now[1], "moe_layer_kcycles": k} for k in range(0, 302, 2)), moe_rows, "decode")
    print(f"decode, current builds, mixture of experts ({len(moe_rows)} rows): rms log error {moe[0]:.1%} "
          f"with {moe[1]}")
    # Current builds' bytes in flight: fitted on their decode rows of data-center (HBM) GPUs, the only ones where the
    # ceiling binds (fit.decode_bandwidth), with the dense layer's cycles above, among the values that keep the one
    # first-hand observation of a current build on an H200, reference/real-gpu-notes.md (Q4_K_M decode at about
    # 25-40 % of the 4.8 TB/s roofline; no model, context or build named), for every catalog Q4_K_M model of 7-70B
    # at ctx 4096 (shares rounded to the percent). The rows alone would take 4.625 KiB and put the 7B and 8B at 23-24 %.
    hbm = _search(({**now[1], "current_inflight_kib": k / 8} for k in range(28, 81)),
                  lambda: _worst(hbm_rows, "decode") if _meets_h200_observation() else math.inf)
    print(f"decode, current builds on HBM ({sum(c.kind == 'decode' for c in hbm_rows)} rows): rms log error "
          f"{hbm[0]:.1%} with {hbm[1]}; H200 Q4_K_M shares {' '.join(f'{s:.0%}' for s in _h200_shares())}")


def _meets_h200_observation() -> bool:
    return all(0.25 <= round(share, 2) <= 0.40 for share in _h200_shares())


def _fit_prefill(cases: list) -> None:
    catalog = load_catalog()
    fa = {"fa_efficiency": float(catalog.engines[CURRENT[0]].fa_efficiency)}
    score = {"score_sm_cycles": float(catalog.engines[CURRENT[0]].score_sm_cycles)}
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
    now = {"mmq_prefill_layer_kcycles": float(catalog.engines[CURRENT[0]].prefill_layer_kcycles)}
    for _ in range(5):  # coordinate descent: GEMM constants, FlashAttention's, the power figures, the MMQ
        #                 builds' per-layer time, until all settle
        gemm = _best((dict(prefill_efficiency=eff, mmq_efficiency=mmq, prefill_layer_kcycles=k, **fa, **score, **power,
                            **now)
                      for eff, mmq, k in itertools.product([x / 100 for x in range(40, 92, 2)],
                                                           [x / 100 for x in range(16, 42, 2)], LAYER_KCYCLES_GRID)),
                     cases, "prefill")
        best_pp = _best(({**gemm[1], "fa_efficiency": x / 100} for x in range(10, 92, 2)), cases, "prefill")
        best_pp = _best(({**best_pp[1], "score_sm_cycles": x / 2} for x in range(0, 33)), cases, "prefill")
        for arch in fitted_power:
            best_pp = _best(({**best_pp[1], arch: nj} for nj in POWER_GRID), cases, "prefill")
        best_pp = _best(({**best_pp[1], "mmq_prefill_layer_kcycles": lat} for lat in range(0, 740, 20)), current,
                        "prefill")
        previous = (fa, score, power, now)
        fa = {"fa_efficiency": best_pp[1]["fa_efficiency"]}
        score = {"score_sm_cycles": best_pp[1]["score_sm_cycles"]}
        power = {a: best_pp[1][a] for a in power}
        now = {"mmq_prefill_layer_kcycles": best_pp[1]["mmq_prefill_layer_kcycles"]}
        if (fa, score, power, now) == previous:
            break
    print(f"prefill: rms log error {_worst(cases, 'prefill'):.1%} with {best_pp[1]} (the MMQ builds' rows: "
          f"{_worst(current, 'prefill'):.1%})")
    for arch in POWER_FITTED:  # the fitted energies per delivered FP16 FLOP, for the comparison across architectures
        flops = catalog.architectures[arch.removeprefix("nj_")].fp16_tensor_flops_per_clk
        print(f"  {arch.removeprefix('nj_')}: {best_pp[1][arch]} nJ per SM clock = "
              f"{best_pp[1][arch] * 1e3 / flops:.2f} pJ per FP16 FLOP")


if __name__ == "__main__":
    sys.exit(main())
