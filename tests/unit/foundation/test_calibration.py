"""The fit model against the calibration measurements (benchmarks/calibration.tsv)."""

import dataclasses
import statistics
from pathlib import Path

import pytest

from coderig_deploy.calibration import load_cases

CASES = load_cases(Path(__file__).parents[3] / "benchmarks" / "calibration.tsv")


def test_every_calibration_row_is_read():
    assert sum(c.kind == "vram" for c in CASES) == 5
    assert sum(c.kind == "decode" for c in CASES) == 125
    assert sum(c.kind == "prefill" for c in CASES) == 119


def test_a_prefill_row_after_a_cached_depth_starts_there():
    # llama-bench pp512@d32768 (llama.cpp#17505): ctx 33280, depth 33024 (the test's average): 512 prompt
    # tokens after 32768 cached ones; rows of a prompt into an empty cache start at 0.
    deep = [c for c in CASES if c.kind == "prefill" and c.source.startswith("ggml-org/llama.cpp#17505")]
    assert len(deep) == 1 and deep[0].prompt_start == 32768 and deep[0].plan().prompt_tokens == 512
    # llama.cpp's DGX Spark notes: pp2048 @ d0..d32768 (ctx d + 2048, depth d + 1024).
    spark = [c for c in CASES if c.kind == "prefill" and c.source.startswith("ggml-org/llama.cpp benches/")]
    assert sorted({c.prompt_start for c in spark}) == [0, 4096, 8192, 16384, 32768]
    assert all(c.plan().prompt_tokens == 2048 for c in spark)
    assert all(c.prompt_start == 0 for c in CASES if c.kind == "prefill" and c is not deep[0] and c not in spark)


def test_a_prefill_row_at_a_stated_microbatch_is_predicted_at_it():
    # "(pp4096 at ubatch 64, ...)": llama-bench -ub 64; the label says so, and the plan runs 64-token ubatches.
    small = [c for c in CASES if c.kind == "prefill" and c.ubatch]
    assert {c.ubatch for c in small} >= {16, 32, 64}
    case = next(c for c in small if c.ubatch == 64)
    assert case.label.endswith(" ub 64")
    default = dataclasses.replace(case, unit="tok/s (pp4096)")
    assert default.ubatch is None and case.predicted() < default.predicted()
    # Decode rows at ubatch 1 keep their own meaning (decode kernels, last logits only).
    assert all(c.ubatch == 1 for c in CASES if c.last_logits_only)


def test_current_build_flash_attention_rows_are_fitted():
    # FlashAttention's efficiency (engines.tsv fa_efficiency) is fitted on current builds' rows with
    # flash attention on, at a short prompt and at depth 32768; ORippler's #19053 row stays held out.
    fa_on = [c for c in CASES if c.set == "fit" and c.kind == "prefill" and c.flash_attention]
    assert {c.gpus[0] for c in fa_on} >= {"rtx-3090", "rtx-4090", "rtx-5090"}
    assert any(c.ctx > 32768 for c in fa_on)


def test_excluded_rows_are_broken_series_and_windows_runs():
    # The rules in calibration.tsv's header. First, checked on every single-GPU prefill series of one source: a longer
    # prompt is never faster per token, so a series that is did not measure the kernels (set=excluded), and no
    # scored series breaks the rule. Second: runs on Windows, a platform coderig-deploy does not provision. Third:
    # a harness's summary that records neither the settings nor the platform (llmfit's shared bench results).
    series: dict[tuple, dict[int, object]] = {}
    for c in CASES:
        if c.kind == "prefill" and len(c.gpus) == 1 and c.prompt_start == 0 and c.depth == c.ctx // 2:
            series.setdefault((c.model_tag, c.gpus, c.flash_attention, c.engine, c.source), {})[c.ctx] = c
    broken = set()
    for by_ctx in series.values():
        ctxs = sorted(by_ctx)
        if any(by_ctx[b].measured > by_ctx[a].measured for a, b in zip(ctxs, ctxs[1:])):
            broken |= {id(c) for c in by_ctx.values()}
    windows = {id(c) for c in CASES if "Windows" in c.source}
    excluded = {id(c) for c in CASES if c.set == "excluded"}
    unrecorded = {id(c) for c in CASES if "llmfit bench --share" in c.source}
    assert len(broken) == 4 and len(windows) == 6 and len(unrecorded) == 3
    assert excluded == broken | windows | unrecorded


def test_seed_estimates_are_neither_fit_nor_held_out():
    # The seed guide's rounded "Est. Tok/s" figures are printed apart, never counted as measurements.
    seed = [c for c in CASES if "shared/seeds/" in c.source]
    assert len(seed) == 3 and all(c.set == "seed" for c in seed)


def test_a_current_build_prefill_row_is_fitted():
    # MMQ of a current build (stream-k and later kernels: engine llama.cpp, no wave loss), not only June 2024's.
    # Within 10 % but the rows PREFILL_OUTLIERS explains (the scoreboard's A100 and H100 with flash attention).
    current = [c for c in CASES if c.set == "fit" and c.kind == "prefill" and c.engine == "llama.cpp"]
    inside = [c for c in current if _id(c) not in PREFILL_OUTLIERS]
    assert len(inside) >= len(current) - 3 and all(abs(c.error) < 0.10 for c in inside)


def test_current_build_decode_rows_are_fitted():
    # Late-2025 llama.cpp (JohannesGaessler's PRs) at microbatch size 1: the decode kernels, logits only for the
    # last token of each prompt, so the output layer is left out of their prediction.
    current = [c for c in CASES if c.set == "fit" and c.kind == "decode" and c.engine == "llama.cpp"]
    microbatch_1 = [c for c in current if c.last_logits_only]
    assert len(microbatch_1) == 5 and all(abs(c.error) < 0.10 for c in microbatch_1)
    # The others are the scoreboard's tg128 on data-center GPUs, which fit the bytes in flight within a real H200's
    # observation (engines.tsv inflight_kib_per_sm): 4-11 % fast.
    data_center = [c for c in current if c not in microbatch_1]
    assert {g for c in data_center for g in c.gpus} == {"a100-80gb-pcie", "h100-sxm"}
    assert all(0 < c.error < 0.15 for c in data_center)
    tg = [c for c in CASES if c.kind == "decode" and "tg" in c.unit]
    assert tg and not any(c.last_logits_only for c in tg)


def test_held_out_prefill_covers_a_gpu_no_fit_row_has():
    # The RTX PRO 6000 Blackwell rows (another author, Sep 2025 build) check prefill on a card no fit row
    # measures: the dense 7B and 70B within 16 %, the mixture of experts far outside (PREFILL_OUTLIERS says why).
    fit_gpus = {g for c in CASES if c.set == "fit" for g in c.gpus}
    new_class = [c for c in CASES if c.set == "held-out" and c.kind == "prefill" and not set(c.gpus) & fit_gpus]
    assert ("rtx-pro-6000",) in {c.gpus for c in new_class}
    dense = [c for c in new_class if "qwen3-coder" not in c.model_tag and c.gpus == ("rtx-pro-6000",)]
    assert len(dense) == 2 and all(abs(c.error) < 0.16 for c in dense)


def test_held_out_sources_are_not_fit_sources():
    fit_sources = {c.source.split(" (")[0] for c in CASES if c.set == "fit"}
    held_out = {c.source.split(" (")[0] for c in CASES if c.set == "held-out"}
    assert held_out and not fit_sources & held_out


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "vram"], ids=lambda c: c.label)
def test_vram_within_5_percent(case):
    assert case.predicted() == pytest.approx(case.measured, rel=0.05)


@pytest.mark.parametrize("kind", ["decode", "prefill"])
@pytest.mark.parametrize("subset", ["fit", "held-out"])
def test_speed_median_error(kind, subset):
    # Regression bounds at today's fit (benchmarks/fit_accuracy.py prints the tables): the goal is 10 %.
    # Held-out prefill's median is 7.8 % over 30 rows (12 of them outside 10 %: PREFILL_OUTLIERS), 12.2 % before
    # GeForce cards' clock under load was counted.
    # The DGX Spark's rows (Dec 2026, held out: unified LPDDR5x memory, a class no fit row has) put held-out
    # prefill's median above the goal: 10.2 % over 43 rows, 7.4 % over the other 32 (PREFILL_OUTLIERS says why).
    bound = 0.11 if (kind, subset) == ("prefill", "held-out") else 0.10
    errors = [abs(c.error) for c in CASES if c.kind == kind and c.set == subset]
    assert statistics.median(errors) < bound
    discrete = [abs(c.error) for c in CASES if c.kind == kind and c.set == subset and c.gpus[0] != "dgx-spark"]
    assert statistics.median(discrete) < 0.10


# Decode rows the model misses by more than 15 %, each with why. (The held-out llama.cpp#19053 row, Feb 2026 master,
# left this list when the current builds' own decode rows were fitted: 21 % slow before, 11 % after, 3 % since their
# per-layer latency is counted in GPU clock cycles.)
DECODE_OUTLIERS = {
    # The seed guide's rounded "~40" (not a measurement): 69 % of the RTX 4070's bandwidth roofline for this model,
    # where the same guide's RTX 3090 32B "~38" is 80 % and its 2x RTX 4090 70B "18-22" 84 % of theirs; the model
    # puts all three at 80-84 %. Predicted 11 % over with 2024's per-layer latency, 18 % with the current builds'
    # flat 52 us, 23 % with their latency in clock cycles (96 thousand / the 4070's 2722 MHz under load = 35 us).
    "seed qwen2.5-coder:14b q4_K_M rtx-4070 ctx 4096 fa on": 0.25,
    # RTX 3090, Llama 3 8B tg8192 (XiongjieDai's LLaMA 3 table): predicted 19 % fast. Its own tg8192 against its tg512
    # takes 4.7 memory reads' time per KV byte without flash attention; the RTX A6000 (the same GA102 die and 6 MB L2,
    # the Professional GPUs notebooks) takes 2.8, and every other card 1.4-2.9, which the per-query-head passes with
    # kv_l2_pass_share 0.4 give (2.2). It was 10 % fast with one flat factor of 4.0, fitted mostly on this row and
    # the RTX 4090's. Its tg512 is 4 % fast too: the 3090 reaches 82-83 % of its bandwidth, the A6000 89-98 %. What
    # makes this card's attention slower than the A6000's at depth (GDDR6X timings, the table's different build) is
    # not known.
    "fit llama3.1:8b q4_K_M rtx-3090 ctx 8192 fa off": 0.25,
    # A100 PCIe, LLaMA 2 70B q4_0, Dec 2023 build (XiongjieDai's LLaMA 2 table): predicted 16 % slow. The four Dec 2023
    # rows measure the A100 PCIe as fast as the H100 PCIe (7B 136.2 against 133.8, 70B 25.7 against 25.9 tok/s), while
    # the same author's May 2024 rows measure the H100 PCIe 4-24 % faster, which the bytes-in-flight ceiling gives
    # (6 % more SMs, 354 against 390 ns of memory latency) and which the shared inflight_kib_per_sm is fitted to. A
    # separate bytes-in-flight value and latency for the 2023 build fit its four rows to 5 % rms (4.5 KiB, 140 us):
    # two constants on four rows, so not taken. Why the 2023 build sees no difference between the cards is not known.
    "fit llama3.1:70b q4_0 a100-80gb-pcie ctx 4096 fa off": 0.20,
    # RTX 4090, Qwen3-30B-A3B Q4_0 tg128, Oct 2025 master (llama.cpp#16834, am17an, held out): predicted 41 % fast,
    # where the fit row of the same card, model and quant (llama.cpp#15631, Aug 2025, 4096 decode steps at depths 0 to
    # 4095 without flash attention) is within 1 %: this row measures 161.55 tok/s at depth 0-127, 17 % below that
    # row's 194.24 at a depth whose KV reads alone cost it 15 %. The same author's table of a month earlier
    # (llama.cpp#16130, GPU not named) has the larger Q4_K_M at 194.63 tg128. The rig or its settings, not the
    # physics, are the likelier difference; nothing in the stored copy says which.
    "held-out qwen3-coder:30b q4_0 rtx-4090 ctx 256 fa off": 0.45,
    # Quadro RTX 6000 and 8000 (Turing, one build, held out): 24 % fast. llama.cpp ran pre-Ampere GPUs without CUDA
    # graphs until ggml-org/llama.cpp#25749 (Jul 2026; looked up after these predictions), so each kernel paid the
    # host's launch: with the no-graph builds' per-layer latency (engines.tsv llama.cpp-2023-12, 120 us, fitted on
    # other rows) in place of the graph's 96 thousand cycles the prediction is 2 % slow. Whether the post's build
    # (b8e09f0) predates #25749 is not known, so the current engine stays.
    "held-out deepseek-coder:6.7b q4_0 quadro-rtx-6000 ctx 256 fa off": 0.30,
    "held-out deepseek-coder:6.7b q4_0 quadro-rtx-8000 ctx 256 fa off": 0.30,
}


@pytest.mark.parametrize("case", [c for c in CASES if c.kind == "decode" and c.set != "excluded"],
                         ids=lambda c: f"{c.set} {c.label}")
def test_decode_within_15_percent(case):
    # The worst decode row outside DECODE_OUTLIERS is ~13 % off (A100 SXM 70B tg512: benchmarks/fit_accuracy.py).
    rel = DECODE_OUTLIERS.get(f"{case.set} {case.label}", 0.15)
    assert case.predicted() == pytest.approx(case.measured, rel=rel)


def test_decode_outliers_are_still_outliers():
    # Decode rows only: a tg8192 row and the same source's pp8192 row share a label.
    by_id = {f"{c.set} {c.label}": c for c in CASES if c.kind == "decode"}
    assert all(abs(by_id[i].error) > 0.15 for i in DECODE_OUTLIERS)


# Prefill rows the model misses by more than 10 %, each with why (benchmarks/fit_accuracy.py prints them all):
PREFILL_OUTLIERS = {
    # 2x RTX 3090, 70B: the same source's 8B Q4_K_M rows on one 3090 are within 6 % and its 2x RTX 4090 70B row
    # within 4 %; the 3090 pair measured 2.35x slower than the 4090 pair while tensor rates and wave fill
    # give 2.0x. The only two-card physics left out, the activations copied between the cards, is 16 MiB
    # per 512-token ubatch (under 1 % of its time). (+31 %; no power limit binds on GA102 here.) The same table
    # measured this same serial work (one 512-token ubatch through 80 layers; more cards only add boundaries) on
    # three RTX 3090 rigs: 300.79 (4 cards), 357.32 (2) and 456.95 tok/s (6), a 1.5x spread, where its RTX 4090 rigs
    # agree within 3 % (812.95-839.43); and the 2-card rig's own 8B pp512 is 17 % below the 1-card rig's (3336 vs
    # 4030). The prediction (468) lies inside the 3090 rigs' spread: a rig effect (clocks, power, PCIe), not a model's.
    "fit llama3.1:70b q4_K_M 2x rtx-3090 ctx 512 fa off": 0.35,
    # RTX 5000 Ada 8B Q4_K_M pp512 (-11 %): its F16 pp512 is within 4 % and its pp8192 rows within 3 %, so the excess
    # is the Q4_K_M rows' FP16 copy. Measured, Q4_K_M takes 48 us per token more than F16 on this card; the copy alone
    # (4.2 GB read, 14 GB written per 512-token ubatch at 0.92 x 576 GB/s) is 67 us. The attention projections'
    # copies (8-32 MiB) fit its 64 MiB L2 and the next matrix's copy overwrites the same pool buffer, so part of the
    # written copy may never reach memory; the model sends all of it there.
    "fit llama3.1:8b q4_K_M rtx-5000-ada ctx 512 fa off": 0.15,
    # L40S 8B Q4_K_M pp8192 (+14 %): its pp512 is within 5 % and its 70B pp8192 within 4 %. Measured, the L40S ran
    # this prompt 10 % slower than the RTX 6000 Ada (3193 against 3543 tok/s), the same AD102 with 12 % less
    # bandwidth and 17 % more power; the model (attention's score traffic without flash attention, the power limit)
    # puts them 1 % apart. The same notebook's L40S 8B F16 series is excluded as broken (it gets faster with a
    # longer prompt); whether this run shared that cause is not known.
    "fit llama3.1:8b q4_K_M l40s ctx 8192 fa off": 0.20,
    # llama.cpp master of Feb 2026 (llama.cpp#19053, held out), pp8096 without flash attention (llama-bench's default
    # then): predicted 16 % slow (23 % before current builds' KQ in f32 cut the score traffic from 24 to 20 bytes;
    # fit.py SCORE_BYTES_FA_OFF), 22 % since the power limit (fit.power_limited_rate): at 300 W the card's cuBLAS
    # attention products (KQ, KQV over 4000-8000 cells, full waves) are capped, while its MMQ weight products are
    # not. No fit row measures a current build without flash attention at a long prompt, so what else is leaner
    # there (fewer score-matrix passes, the 96 MiB L2 holding more, attention products that draw less than the
    # weight GEMMs of the 2024 rows the power figure was fitted on) is not fitted.
    # 25 % since the score matrix's kernels take SM time as well as memory traffic (engines.tsv score_sm_cycles,
    # fitted on the scoreboard's A100 and H100 pp512 with and without flash attention): at 8096 cells on this card
    # the two are close, and the larger is counted.
    "held-out llama3.1:8b q4_0 rtx-6000-ada ctx 8096 fa off": 0.30,
    # RTX PRO 6000 Blackwell, llama 7B Q4_0 pp512, build 6413 (Sep 2025), held out: predicted 19 % fast, where the
    # same source's 70B Q4_K_M row on the same card is within 6 % and the RTX 5090 fit row (2026 master) 7 % slow.
    # Known in part: builds before llama.cpp#19053 (Feb 2026) ran MMQ's stream-k fixup kernel without loop unrolling
    # on Blackwell (+4 % for a 3B model on an RTX PRO 6000 Max-Q when fixed): a cost per weight product, so it weighs
    # more on a small model. The rest (the 7B's per-FLOP rate ~4 % below an RTX 5090's despite 20 % more SMs x clock)
    # is not explained; no fit row has this card or this build on Blackwell.
    "held-out deepseek-coder:6.7b q4_0 rtx-pro-6000 ctx 512 fa on": 0.25,
    # RTX PRO 6000 Blackwell, Qwen3-30B-A3B (mixture of experts) pp512, build 6413 (Sep 2025), held out: predicted
    # 1.78x fast, while the fit rows of the same model at microbatch 16, 32 and 64 (llama.cpp#15631, RTX 4090, Aug
    # 2025) are within 1 %. At 512 tokens the prediction rests on the padded expert tiles (fit.expert_column_share: each
    # expert fills 32 of a 128-wide tile) at MMQ's dense rate. Builds differ here more than anywhere: llama.cpp#16130
    # (am17an, Sep 2025, card not named) measured pp512 6502 tok/s where the model gives an RTX 4090 9459, but a Sep
    # 2026 build on a Linux RTX 5090 (llama.cpp#28196, quant not stated, so no row) ran pp1024 at 12241 tok/s, about
    # what the model gives that card. A build-era effect is the likelier reading; the mechanism is not known. Tried and
    # fitted to nothing: a fixed cost per MMQ tile in k-loop iterations (the fit rows chose 0).
    "held-out qwen3-coder:30b q4_K_M rtx-pro-6000 ctx 512 fa on": 1.00,
    # The llama.cpp CUDA scoreboard (ggml-org/llama.cpp discussion #15013, llama 7B Q4_0 pp512, one post per GPU, each
    # its own build). Its A100 80 GB (fit, Sep 2025): +14 % without flash attention, +13 % with it. It runs MMQ 14 %
    # slower per SM and clock than the same table's RTX 3090 (its H100 SXM is within 10 %). Not modelled, and the
    # likeliest part of it: GeForce and RTX cards run above their rated boost clock under GPU Boost when below their
    # power limit, and every clock in gpus.tsv is the rated one, so the MMQ rate fitted mostly on GeForce cards
    # carries their extra clock; an A100 never exceeds its 1410 MHz.
    "fit deepseek-coder:6.7b q4_0 a100-80gb-pcie ctx 512 fa off": 0.20,
    "fit deepseek-coder:6.7b q4_0 a100-80gb-pcie ctx 512 fa on": 0.20,
    # The scoreboard's held-out posts, predicted before any change for them. RTX 3060 with flash attention (-11 %;
    # -7 % without): the smallest card of the table (28 SMs, 3 MiB L2). RTX 5090 (+10 %, +11 %): the GeForce clock
    # headroom (runtime.tsv geforce_clock_headroom, from reports on Ada and Ampere cards) moved it from +3 %; the
    # 5090 fit row (llama.cpp#20586, 2026 master) is within 4 %. Its rows' builds are a year apart.
    "held-out deepseek-coder:6.7b q4_0 rtx-3060-12gb ctx 512 fa on": 0.15,
    "held-out deepseek-coder:6.7b q4_0 rtx-5090 ctx 512 fa off": 0.15,
    "held-out deepseek-coder:6.7b q4_0 rtx-5090 ctx 512 fa on": 0.15,
    # Counting GeForce cards at 1.10x their rated clock (runtime.tsv geforce_clock_headroom: reported stock clocks
    # under load, not fitted) and refitting brought the RTX 4090's 2024 rows (-11 %, -10 %), the RTX 5090 fit row
    # (-11 %), and the held-out RTX 3060, 3090 32B, 4090 with flash attention, 5070, 4080 and 3090 Ti posts within
    # 10 %; held-out prefill's median went from 12.2 to 7.8 %. It moved these out: the RTX 3090's 2024 rows
    # (F16 on cuBLAS +10 %, Q6_K on June 2024's MMQ +13 %; its current-build rows are within 6 %) and the held-out RTX 3080 2024 row (+12 %): one
    # headroom for all GeForce cards, and a 350 W GA102 under FP16 GEMMs may sit lower than the reports' cards; the
    # A100 SXM 70B 2024 row (-11 %: the cuBLAS builds' per-layer cycles refitted 540 -> 450); the scoreboard's H100
    # SXM with flash attention (-10 %: fa_efficiency refitted 0.38 -> 0.34 on the GeForce rows, now at their clock).
    "fit llama3.1:8b fp16 rtx-3090 ctx 512 fa off": 0.15,
    "fit llama3.1:8b q6_K rtx-3090 ctx 2048 fa off": 0.15,
    "held-out llama3.1:8b q4_K_M rtx-3080-10gb ctx 512 fa off": 0.15,
    "fit llama3.1:70b q4_K_M a100-80gb-sxm ctx 512 fa off": 0.15,
    "fit deepseek-coder:6.7b q4_0 h100-sxm ctx 512 fa on": 0.15,
    # The scoreboard's second table (no flash attention, calibration.tsv says where from), all held out and
    # predicted with the model unchanged. Professional cards at their board power run MMQ far below the rated
    # clock the model uses: RTX 6000 Ada and L40 (300 W on 142 SMs: +36 %, +41 %; the RTX 4090 post, 450 W on 128
    # SMs, is within 4 %), RTX PRO 4000 Blackwell (140 W: +35 %), RTX PRO 6000 Max-Q (300 W: +20 %), A40 (300 W:
    # +16 %). fit.power_limited_rate charges MMQ only for its tensor issue (a quarter of the rate), which no card
    # here reaches; an energy per busy SM clock fitted on four of them overshot the others (calibration.tsv).
    "held-out deepseek-coder:6.7b q4_0 rtx-6000-ada ctx 512 fa off": 0.45,
    "held-out deepseek-coder:6.7b q4_0 l40 ctx 512 fa off": 0.45,
    "held-out deepseek-coder:6.7b q4_0 rtx-pro-4000 ctx 512 fa off": 0.40,
    "held-out deepseek-coder:6.7b q4_0 rtx-pro-6000-maxq ctx 512 fa off": 0.25,
    "held-out deepseek-coder:6.7b q4_0 a40 ctx 512 fa off": 0.20,
    # DGX Spark (GB10: 48 SMs of the RTX 50 class at 2418 MHz, 273 GB/s of unified LPDDR5x), held out and predicted
    # with the model unchanged: prompts 1.4-2.2x slower than predicted. The scoreboard's llama 7B Q4_0 pp512 (+37 %)
    # runs at 0.59x an RTX 5070's (48 SMs too) where the model gives 0.88x (their clocks' ratio). llama.cpp's own
    # DGX Spark notes (Qwen2.5-Coder 7B Q8_0, pp2048 at ubatch 2048 with flash attention, depth 0 to 32768) take a
    # near-constant 0.42-0.45 s more per 2048-token ubatch than predicted at every depth: the attention's growth
    # with depth is predicted within 5 % (0.67 s predicted, 0.70 s measured from d0 to d32768), the weight products
    # are ~1.9x slower. So not the clock (attention would slow too). What fits both dense rows, not adopted: the
    # weights read again for every 128-token column tile of MMQ once a matrix outgrows the 24 MiB L2 (0.48 s for the
    # Q8_0 ubatch, 29-46 ms for the pp512) and that time added to, not hidden under, the tensor time; counted that
    # way on every card it would slow the GA10x cards (4-6 MiB L2) by 13-15 %, whose rows it does not fit. Tried
    # again (Dec 2026): refitted with it, the prefill constants do not move (fit rms 6.3 % either way), so the fit rows
    # cannot decide it; counted on a ubatch's first read of the weights as well, it breaks the fit rows' mixture of
    # experts at microbatch 16-64 (-14 to -43 %), where that read is the whole cost and overlaps the tensor work. The
    # mixture of experts (+115 % at depth 0, -1 % at 32768) also measures less attention growth than predicted. plan
    # says so.
    "held-out deepseek-coder:6.7b q4_0 dgx-spark ctx 512 fa off": 0.45,
    "held-out qwen2.5-coder:7b q8_0 dgx-spark ctx 2048 fa on ub 2048": 1.00,
    "held-out qwen2.5-coder:7b q8_0 dgx-spark ctx 6144 fa on ub 2048": 0.85,
    "held-out qwen2.5-coder:7b q8_0 dgx-spark ctx 10240 fa on ub 2048": 0.75,
    "held-out qwen2.5-coder:7b q8_0 dgx-spark ctx 18432 fa on ub 2048": 0.60,
    "held-out qwen2.5-coder:7b q8_0 dgx-spark ctx 34816 fa on ub 2048": 0.45,
    "held-out qwen3-coder:30b q8_0 dgx-spark ctx 2048 fa on ub 2048": 1.25,
    "held-out qwen3-coder:30b q8_0 dgx-spark ctx 6144 fa on ub 2048": 0.70,
    "held-out qwen3-coder:30b q8_0 dgx-spark ctx 10240 fa on ub 2048": 0.45,
    "held-out qwen3-coder:30b q8_0 dgx-spark ctx 18432 fa on ub 2048": 0.20,
    # Turing (Quadro RTX 6000 and 8000, one build, held out and predicted with the model unchanged): prompts 1.7x
    # slower than predicted, 0.56x the RTX A6000's post where SMs x clock give 0.84x. The model runs MMQ on Turing at
    # the whitepaper's int8 rate per SM and clock, as on GA10x; llama.cpp's int8 mma there is Turing's smaller
    # m8n8k16 shape and its MMQ tiles fit 64 KiB of shared memory per SM (GA10x: 100), but no source gives what that
    # costs, and no fit row measures the architecture. plan says so on Turing cards.
    "held-out deepseek-coder:6.7b q4_0 quadro-rtx-6000 ctx 512 fa off": 0.75,
    "held-out deepseek-coder:6.7b q4_0 quadro-rtx-8000 ctx 512 fa off": 0.75,
}


def _id(case) -> str:
    return f"{case.set} {case.label}"


SCORED = [c for c in CASES if c.set != "excluded"]


@pytest.mark.parametrize("case", [c for c in SCORED if c.kind == "prefill"], ids=_id)
def test_prefill_within_10_percent(case):
    # Wave quantization of the GEMM tiles, the L2 cache holding short prompts' score matrices, and
    # the FP16 copy of the older builds' cuBLAS path bring every other row within 10 %.
    assert case.predicted() == pytest.approx(case.measured, rel=PREFILL_OUTLIERS.get(_id(case), 0.10))


def test_prefill_outliers_are_still_outliers():
    # When a change brings one within 10 %, drop it from PREFILL_OUTLIERS.
    by_id = {_id(c): c for c in CASES if c.kind == "prefill"}
    assert all(abs(by_id[i].error) > 0.10 for i in PREFILL_OUTLIERS)


LONG_PROMPTS = [c for c in SCORED if c.kind == "prefill" and c.ctx >= 8000 and _id(c) not in PREFILL_OUTLIERS]


@pytest.mark.parametrize("case", LONG_PROMPTS, ids=lambda c: c.label)
def test_long_prompt_prefill_within_10_percent(case):
    # pp8192 without flash attention (attention over every cell and the score matrix's traffic) and
    # pp512@d32768 with it (FlashAttention's KQ at the FP32-accumulate rate, half on GeForce cards).
    assert case.predicted() == pytest.approx(case.measured, rel=0.10)


def test_held_out_decode_on_gpus_no_fit_row_measures():
    # GPU classes the constants never saw (RTX Blackwell workstation cards, RTX 50 and 40 SUPER GeForce cards, the
    # L40, A40 and RTX A5000): physics, not rows, predicts them. Dense models within 10 %; the mixture of experts
    # within 15 % (its routing latency rests on one fit row).
    fit_gpus = {g for c in CASES if c.set == "fit" for g in c.gpus}
    unseen = [c for c in CASES if c.set == "held-out" and c.kind == "decode" and not set(c.gpus) & fit_gpus]
    # The A30 (added Dec 2026 with the RTX 4090 D, predicted before any change; the 4090 D is within 2 %) is 14 %
    # fast: half an A100's SMs, so the bytes-in-flight ceiling binds harder, at the A100's memory latency (not
    # measured on the A30's slower HBM2); its 165 W limit may also hold its clock, and so the per-layer cycles, below
    # the rated 1440 MHz.
    assert {g for c in unseen for g in c.gpus} >= {"rtx-pro-6000", "rtx-5080", "rtx-5060-ti-16gb", "l40", "a30",
                                                   "dgx-spark", "quadro-rtx-6000"}
    # The DGX Spark's decode was 7-14 % fast at 92 % of its 273 GB/s; within 7 % since its LPDDR5x is counted at the
    # 233 GB/s a published read microbenchmark measured (gpu_read_bandwidth.tsv), not fitted on these rows.
    bound = {"a30": 0.15, "quadro-rtx-6000": 0.30, "quadro-rtx-8000": 0.30}  # Turing: DECODE_OUTLIERS says why
    assert all(abs(c.error) < bound.get(c.gpus[0], 0.15 if "qwen3-coder" in c.model_tag else 0.10) for c in unseen)
    assert abs(next(c for c in unseen if c.gpus == ("a30",)).error) > 0.10  # drop it from `bound` when it fits
    assert any("qwen3-coder" in c.model_tag for c in unseen)


def test_a_mixture_of_experts_plan_states_its_held_out_prompt_misses():
    # fit.fit's note on a mixture of experts quotes the held-out prompt rows into an empty cache (the 2025 builds'
    # RTX PRO 6000 pp512 and DGX Spark pp2048): the figures in it are these rows' predicted / measured, rounded.
    from coderig_deploy.catalog import load_catalog
    from coderig_deploy.planner import make_plan

    catalog = load_catalog()
    rows = [c for c in CASES if c.set == "held-out" and c.kind == "prefill" and c.prompt_start == 0
            and catalog.model(c.model_tag).model.experts]
    assert {c.gpus[0] for c in rows} == {"rtx-pro-6000", "dgx-spark"}
    ratios = sorted(round(1 + c.error, 1) for c in rows)
    [note] = [n for n in make_plan("qwen3-coder:30b", ["rtx-4090"], 8192).notes if n.startswith("mixture of experts")]
    assert f"{ratios[0]}-{ratios[-1]}x slower" in note and "upper bounds" in note
    assert not any(n.startswith("mixture of experts") for n in make_plan("qwen2.5-coder:7b", ["rtx-4090"], 8192).notes)
