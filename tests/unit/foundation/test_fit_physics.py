"""The speed and memory model's physics: compute ceiling, prefill, time to first token, context size, usable memory."""

import dataclasses
import re
import statistics

import pytest

from coderig_deploy import fit, planner
from coderig_deploy.calibration import usable_cases
from coderig_deploy.catalog import load_catalog
from coderig_deploy.errors import UserInputError
from coderig_deploy.planner import make_plan


def test_hbm_gpus_decode_well_below_the_bandwidth_roofline():
    # reference/real-gpu-notes.md: llama.cpp decoded Q4_K_M at about 25-40 % of the roofline on an H200. The
    # current builds' bytes in flight (engines.tsv inflight_kib_per_sm) are fitted on the llama.cpp scoreboard's
    # A100 and H100 SXM rows among the values that keep every one of these four inside that range (rounded to the
    # percent); the small models, where the per-layer latency adds most, sit at its lower end.
    shares = []
    for tag in ("llama3.1:70b-instruct-q4_K_M", "qwen2.5-coder:32b-instruct-q4_K_M", "llama3.1:8b-instruct-q4_K_M",
                "qwen2.5-coder:7b-instruct-q4_K_M"):
        plan = make_plan(tag, ["h200"], 4096)
        roofline = 4800e9 / (plan.weights_mib * fit.MIB)
        shares.append(plan.decode_tok_s / roofline)
    assert all(0.25 <= round(share, 2) <= 0.40 for share in shares), shares
    assert 0.25 <= statistics.geometric_mean(shares) <= 0.40
    assert shares[0] > shares[1] > shares[3]  # 70B, 32B, 7B: the bigger the model, the nearer the roofline


def test_gddr_gpus_stay_near_the_bandwidth_roofline():
    plan = make_plan("qwen2.5-coder:32b-instruct-q4_K_M", ["rtx-3090"], 4096)
    roofline = 936e9 / (plan.weights_mib * fit.MIB)
    assert plan.decode_tok_s / roofline > 0.7


def test_compute_ceiling_binds_only_when_it_is_slower():
    # No quant type sets decode_ops_per_weight since the bytes-in-flight ceiling (quants.tsv); the mechanism stays
    # for one that does: slower when the integer work outlasts the memory time, unchanged when it does not.
    cat = load_catalog()
    choice = cat.model("llama3.1:70b-instruct-q4_K_M")
    dev = cat.device("h200")
    heavy = dataclasses.replace(choice.quant.quant_type(), decode_ops_per_weight=40.0)
    light = dataclasses.replace(heavy, decode_ops_per_weight=1.0)
    req = fit.FitRequest(choice.model.architecture(), heavy, choice.file_bytes, (dev,), cat.engine(), ctx=4096)
    no_ops = dataclasses.replace(req, quant=dataclasses.replace(heavy, decode_ops_per_weight=0.0))
    assert fit.fit(req).decode_tok_s < fit.fit(no_ops).decode_tok_s
    assert fit.fit(dataclasses.replace(req, quant=light)).decode_tok_s == fit.fit(no_ops).decode_tok_s


def test_decode_bandwidth_is_the_lower_of_memory_and_bytes_in_flight():
    # Little's law: SMs x bytes in flight per SM / latency. A100: 108 x 3.75 KiB / 390 ns = 1.06e12 B/s, below
    # 0.92 x 1935 GB/s; an RTX 4090 (128 SMs, 252 ns) could keep 1.95e12 B/s in flight, so its memory binds.
    eng = fit.Engine(bandwidth_efficiency=0.92, per_layer_latency_us=0, cuda_overhead_mib=0, fit_margin_mib=0,
                     inflight_kib_per_sm=3.75)
    a100 = fit.Device("a100", 81920, 1935, sm_count=108, memory_latency_ns=390)
    assert fit.decode_bandwidth(eng, a100) == pytest.approx(108 * 3.75 * 1024 / 390e-9)
    gddr = fit.Device("4090", 24576, 1008, sm_count=128, memory_latency_ns=252)
    assert fit.decode_bandwidth(eng, gddr) == pytest.approx(0.92 * 1008e9)
    # Unknown latency, or an engine without the constant: the memory alone.
    assert fit.decode_bandwidth(eng, dataclasses.replace(a100, memory_latency_ns=0)) == pytest.approx(0.92 * 1935e9)
    assert fit.decode_bandwidth(dataclasses.replace(eng, inflight_kib_per_sm=0), a100) == pytest.approx(0.92 * 1935e9)
    # A longer latency lowers the ceiling in proportion.
    slow = dataclasses.replace(a100, memory_latency_ns=780)
    assert fit.decode_bandwidth(eng, slow) == pytest.approx(fit.decode_bandwidth(eng, a100) / 2)


def test_hbm_decode_follows_sms_and_latency_not_bandwidth():
    # The catalog's HBM cards: an H200 has 2.4x an A100 SXM's bandwidth but decodes a 32B model only as much faster
    # as 132 SMs at 354 ns against 108 at 390 ns allow (1.35x) less the per-layer latency.
    tag = "qwen2.5-coder:32b-instruct-q4_K_M"
    a100, h200 = (make_plan(tag, [g], 4096).decode_tok_s for g in ("a100-80gb-sxm", "h200"))
    assert 1.1 < h200 / a100 < 1.4


def test_every_memory_latency_row_names_a_catalog_gpu_and_its_source():
    from coderig_deploy.catalog import _read_tsv

    rows = _read_tsv("gpu_memory_latency.tsv")
    cat = load_catalog()
    assert {r["slug"] for r in rows} <= set(cat.gpus)
    assert all(200 < float(r["latency_ns"]) < 1000 and r["source"] for r in rows)
    assert cat.device("h200").memory_latency_ns == 354 and cat.device("rtx-3090").memory_latency_ns == 0


def test_kv_read_factor_counts_a_pass_per_query_head():
    # Llama 3 8B: 32 query heads over 8 KV heads, head_dim 128. At 4096 cells one KV head's K is 1 MiB.
    arch = fit.Architecture(layers=32, heads=32, kv_heads=8, hidden=4096, head_dim=128, ffn=14336, vocab=128256,
                            params_b=8.0, active_params_b=8.0)
    # In L2: one pass from memory, three at the L2 share.
    assert fit.kv_read_factor(arch, 6, 4096, 0.4) == pytest.approx(1 + 3 * 0.4)
    # No L2 (or a K that does not fit): every pass from memory.
    assert fit.kv_read_factor(arch, 0, 4096, 0.4) == pytest.approx(4.0)
    # 32768 cells: 8 MiB of K per KV head, more than a 6 MB L2 holds; 16384: 4 MiB, held.
    assert fit.kv_read_factor(arch, 6, 65536, 0.4) > fit.kv_read_factor(arch, 6, 32768, 0.4) > 1 + 3 * 0.4
    assert fit.kv_read_factor(arch, 6, 16384, 0.4) == pytest.approx(1 + 3 * 0.4)
    # Half of the K in L2: half of the later passes from memory.
    assert fit.kv_read_factor(arch, 0.5, 4096, 0.4) == pytest.approx(1 + 3 * (0.5 + 0.5 * 0.4))
    # Without grouped-query attention there is one pass per KV head, whatever the L2.
    mha = dataclasses.replace(arch, kv_heads=32)
    assert fit.kv_read_factor(mha, 0, 4096, 0.4) == 1.0


def test_decode_attention_without_flash_attention_costs_more_with_more_query_heads_per_kv_head():
    # The same KV cache read by 8 query heads per KV head (Llama 3 70B) costs more than by 4 (8B) at equal depth.
    cat = load_catalog()
    eng = cat.engine("llama.cpp-2024-05")
    dev = cat.device("a100-80gb-pcie")
    req8 = fit.FitRequest(cat.model("llama3.1:8b").model.architecture(), cat.model("llama3.1:8b").quant.quant_type(),
                          cat.model("llama3.1:8b").file_bytes, (dev,), eng, ctx=8192, flash_attention=False)
    arch70 = cat.model("llama3.1:70b").model.architecture()
    per_byte = {}
    for name, req in (("8b", req8), ("70b", dataclasses.replace(req8, arch=arch70))):
        kv = fit.kv_cache_bytes(req.arch, 4096, 1, "f16", layers=1)
        per_byte[name] = fit._kv_read_bytes(req, 4096, dev) / kv
    assert per_byte["8b"] == pytest.approx(1 + 3 * eng.kv_l2_pass_share)
    assert per_byte["70b"] == pytest.approx(1 + 7 * eng.kv_l2_pass_share)
    assert fit._kv_read_bytes(dataclasses.replace(req8, flash_attention=True), 4096, dev) == pytest.approx(
        fit.kv_cache_bytes(req8.arch, 4096, 1, "f16", layers=1))


def test_decode_slows_with_depth_and_more_without_flash_attention():
    at = {d: make_plan("llama3.1:8b", ["rtx-4090"], 32768, depth=d, flash_attention=False).decode_tok_s
          for d in (512, 16384)}
    fa = make_plan("llama3.1:8b", ["rtx-4090"], 32768, depth=16384, flash_attention=True).decode_tok_s
    assert at[16384] < fa < at[512]


def test_prefill_is_compute_bound_and_ttft_grows_with_the_prompt():
    slow = make_plan("qwen2.5-coder:14b", ["rtx-4060-ti-16gb"], 16384, prompt_tokens=4096)
    fast = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 16384, prompt_tokens=4096)
    assert fast.prefill_tok_s / slow.prefill_tok_s > 3  # 128 vs 34 SMs at similar clocks
    longer = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 16384, prompt_tokens=8192)
    assert longer.time_to_first_token_s > 2 * fast.time_to_first_token_s * 0.95
    assert fast.time_to_first_token_s == pytest.approx(4096 / fast.prefill_tok_s, rel=0.25)



def _prefill_request(flash_attention: bool, engine: str = "llama.cpp", gpu: str = "rtx-4090",
                     tag: str = "llama3.1:8b-instruct-q4_K_M") -> fit.FitRequest:
    cat = load_catalog()
    choice = cat.model(tag)
    return fit.FitRequest(choice.model.architecture(), choice.quant.quant_type(), choice.file_bytes,
                          (cat.device(gpu),), cat.engine(engine), ctx=32768, flash_attention=flash_attention)


def test_prefill_attention_grows_with_depth_and_costs_more_without_flash_attention():
    def per_token(req: fit.FitRequest, depth: int) -> float:
        result = fit.fit(req)
        return fit.prefill_seconds_per_token(req, result.devices, 0, depth)

    fa_off, fa_on = _prefill_request(False), _prefill_request(True)
    # Matrix work is the same at every depth; attention adds work per cell, and the score matrix's
    # traffic (SCORE_BYTES_FA_OFF per head and cell) only without flash attention.
    growth_off = per_token(fa_off, 16384) - per_token(fa_off, 256)
    growth_on = per_token(fa_on, 16384) - per_token(fa_on, 256)
    assert growth_on > 0 and growth_off > 1.5 * growth_on
    # A short prompt's score matrix (512 x 512 x 32 heads, f32: 32 MiB) stays in the RTX 4090's 72 MiB L2, not in
    # the RTX 3090's 6 MiB: only there does it cost memory traffic. In L2 its kernels still take their SM time
    # (engines.tsv score_sm_cycles per score over all SMs), which is then the whole of it.
    dev = fa_off.devices[0]
    sm_only = 32 * 512 * fa_off.engine.score_sm_cycles / (dev.sm_count * dev.clock_mhz * 1e6)
    assert sm_only > 0.0 and fit._score_seconds(fa_off, dev, 512, 512) == pytest.approx(sm_only)
    no_sm = dataclasses.replace(fa_off, engine=dataclasses.replace(fa_off.engine, score_sm_cycles=0.0))
    assert fit._score_seconds(no_sm, dev, 512, 512) == 0.0
    off_3090 = _prefill_request(False, gpu="rtx-3090")
    no_sm_3090 = dataclasses.replace(off_3090, engine=no_sm.engine)
    assert fit._score_seconds(no_sm_3090, off_3090.devices[0], 512, 512) > 0.0
    # The slower of the two, memory traffic or SM time: on the 3090 the SM time of a deep prompt's scores outlasts
    # their traffic (82 SMs at 1695 MHz against 936 GB/s).
    d3090 = off_3090.devices[0]
    memory = fit._score_seconds(no_sm_3090, d3090, 8192, 512)
    sm = 32 * 8192 * off_3090.engine.score_sm_cycles / (d3090.sm_count * d3090.clock_mhz * 1e6)
    assert sm > memory and fit._score_seconds(off_3090, d3090, 8192, 512) == pytest.approx(sm)
    assert fit._score_seconds(fa_on, fa_on.devices[0], 8192, 512) == 0.0  # flash attention: none at any depth


def test_score_matrix_reaches_memory_only_beyond_the_l2_cache():
    cat = load_catalog()
    arch = cat.model("llama3.1:8b").model.architecture()
    big_l2, small_l2 = cat.device("rtx-4090"), cat.device("rtx-3090")
    assert (big_l2.l2_mib, small_l2.l2_mib) == (72, 6)
    assert fit.score_dram_share(arch, big_l2, 512, 512) == 0.0  # 32 MiB matrix
    assert 0.5 < fit.score_dram_share(arch, big_l2, 4096, 512) < 1.0  # 256 MiB: L2 holds 72 of it
    assert fit.score_dram_share(arch, small_l2, 512, 512) > 0.8
    assert fit.score_dram_share(arch, dataclasses.replace(big_l2, l2_mib=0), 512, 512) == 1.0  # unknown L2


def test_gemm_waves_leave_sms_idle_when_tiles_do_not_divide_evenly():
    cat = load_catalog()
    arch = cat.model("llama3.1:8b").model.architecture()
    rtx_4090, rtx_4080 = cat.device("rtx-4090"), cat.device("rtx-4080")
    tile = (256, 128)
    # Q and O: 16 x 4 = 64 tiles, half a wave on 128 SMs, 64 of 76 on the RTX 4080.
    assert fit.wave_fill(arch, rtx_4090, 512, tile) < fit.wave_fill(arch, rtx_4080, 512, tile) < 1.0
    one_wave = dataclasses.replace(rtx_4090, sm_count=4)  # every product's tile count is a multiple of 4
    assert fit.wave_fill(arch, one_wave, 512, tile) == 1.0
    assert fit.wave_fill(arch, rtx_4090, 512, (0, 0)) == 1.0  # stream-k: no waves
    big = cat.model("llama3.1:70b").model.architecture()  # 8192-wide products fill the 4090 better
    assert fit.wave_fill(big, rtx_4090, 512, tile) > fit.wave_fill(arch, rtx_4090, 512, tile)


def test_stream_k_mmq_is_faster_than_mmq_in_waves():
    # llama.cpp#8018 replaced MMQ's waves of tiles with stream-k; the #7860 build still ran them.
    def prefill(engine: str) -> float:
        req = _prefill_request(True, engine=engine)
        return fit.fit(req).prefill_tok_s

    assert prefill("llama.cpp") > prefill("llama.cpp-2024-06")
    # F16 weights take cuBLAS in both builds: the same rate and waves for the weight products (attention
    # differs by build: FlashAttention kernels, KQ precision).
    f16 = [_prefill_request(True, engine=e, tag="llama3.1:8b-instruct-fp16")
           for e in ("llama.cpp", "llama.cpp-2024-06")]
    assert fit._matrix_path(f16[0], f16[0].devices[0])[:3] == fit._matrix_path(f16[1], f16[1].devices[0])[:3]


def test_a_token_without_logits_skips_the_output_layer():
    # A prompt run one token per ubatch (llama-bench -ub 1) computes logits only for its last token.
    req = _prefill_request(True, tag="llama3.1:8b-instruct-q4_0")
    every = fit.fit(req).decode_tok_s
    last_only = fit.fit(dataclasses.replace(req, logits_every_token=False)).decode_tok_s
    _, _, output = fit.weight_split(req.arch, req.quant, req.file_bytes)
    dev = req.devices[0]
    output_s = output / (req.engine.bandwidth_efficiency * dev.bandwidth_gbs * 1e9)
    assert 1 / every - 1 / last_only == pytest.approx(output_s, rel=1e-9)


def test_prefill_ubatch_attends_every_cell_up_to_its_end():
    # llama.cpp multiplies a ubatch against every cell up to its last token (the mask hides the later
    # ones), so a 512-token ubatch centred on 256 and a 128-token one centred on 448 both see 512 cells.
    req = _prefill_request(False)
    assert fit._attention_cells(req, 256, 512) == fit._attention_cells(req, 448, 128) == 512
    assert fit._attention_cells(req, 40000, 512) == 32768  # never more than the cache holds


def test_attention_products_run_on_fp16_tensor_cores_even_on_the_mmq_path():
    req = _prefill_request(False)
    dev = req.devices[0]
    slower_int8 = dataclasses.replace(req, devices=(dataclasses.replace(dev, int8_ops_per_clk=dev.int8_ops_per_clk / 2),))
    cells = 4096
    assert fit._attention_seconds(req, dev, cells, 512) == fit._attention_seconds(slower_int8, slower_int8.devices[0],
                                                                                  cells, 512)
    assert fit._matrix_path(slower_int8, slower_int8.devices[0])[0] < fit._matrix_path(req, dev)[0]


def test_cuda_context_grows_with_sm_count():
    small = make_plan("qwen2.5-coder:7b", ["rtx-4060"], 4096).overhead_mib
    large = make_plan("qwen2.5-coder:7b", ["h200"], 4096).overhead_mib
    assert large == pytest.approx(526, abs=2)  # reference/real-gpu-notes.md: bare context on the H200
    assert small < large


def test_usable_memory_is_what_cuda_reports_on_linux():
    # data/driver_reserved.tsv: 27 cards' memory.total against CUDA's own total on Linux. The plan's usable memory is
    # the latter within 200 MiB on every card and 40 MiB on the median one (0.43 % of memory.total, fitted on the
    # H200 alone, was 350 MiB off on the median card); the H200 itself 100 MiB below the 143155 cuMemGetInfo gave.
    cat = load_catalog()
    cases = usable_cases()
    assert all(c.total_mib == cat.gpu(c.gpu).vram_mib for c in cases)
    errors = {c.gpu: c.error_mib for c in cases}
    assert len(errors) >= 25 and max(abs(e) for e in errors.values()) < 200, errors
    assert statistics.median(abs(e) for e in errors.values()) < 40, errors
    assert abs(errors["h200"]) <= 100 and abs(errors["rtx-4090"]) < 80 and abs(errors["rtx-3050-6gb"]) < 80
    # The two constants are the least-squares line through each card's median reservation, rounded.
    slope, intercept = statistics.linear_regression([c.total_mib for c in cases],
                                                    [c.total_mib - c.cuda_mib for c in cases])
    assert cat.runtime["driver_reserved_base_mib"] == pytest.approx(intercept, abs=10)
    assert cat.runtime["driver_reserved_fraction"] == pytest.approx(slope, abs=1e-4)


def test_every_catalog_gpu_has_compute_facts():
    cat = load_catalog()
    for slug, gpu in cat.gpus.items():
        dev = cat.device(slug)
        assert dev.int_ops_per_s > 0 and dev.tensor_flops_per_s > 0, slug
        assert gpu.source and gpu.architecture in cat.architectures


def test_every_l2_row_names_a_catalog_gpu():
    from coderig_deploy.catalog import _read_tsv

    rows = _read_tsv("gpu_cache.tsv")
    cat = load_catalog()
    assert {r["slug"] for r in rows} <= set(cat.gpus)
    assert all(float(r["l2_mib"]) > 0 and r["source"] for r in rows)


def test_llama_cpp_kernels_reach_half_of_hoppers_tensor_rate():
    # MMQ and FlashAttention issue mma.sync; Hopper's full rate needs wgmma (gpu_architectures.tsv).
    cat = load_catalog()
    h100, a100 = cat.device("h100-sxm"), cat.device("a100-80gb-sxm")
    assert (h100.mma_sync_share, a100.mma_sync_share, cat.device("rtx-5090").mma_sync_share) == (0.5, 1.0, 1.0)

    def prefill(tag: str, gpu: str) -> float:
        return fit.fit(_prefill_request(True, gpu=gpu, tag=tag)).prefill_tok_s

    int8_ratio = h100.int8_ops_per_s / a100.int8_ops_per_s  # 3.2x on paper
    q4 = "llama3.1:8b-instruct-q4_K_M"
    mmq_ratio = prefill(q4, "h100-sxm") / prefill(q4, "a100-80gb-sxm")
    assert 1.0 < mmq_ratio < 0.6 * int8_ratio
    # F16 weights go through cuBLAS, which does use wgmma.
    assert prefill("llama3.1:8b-instruct-fp16", "h100-sxm") > 2 * prefill("llama3.1:8b-instruct-fp16", "a100-80gb-sxm")


def test_geforce_cards_accumulate_in_fp32_at_half_rate():
    # NVIDIA's whitepapers: GeForce cards halve FP16 tensor throughput with FP32 accumulation; RTX
    # professional and data-center parts do not.
    cat = load_catalog()
    assert cat.device("rtx-4090").fp32_acc_share == 0.5
    assert cat.device("rtx-5090").fp32_acc_share == 0.5
    assert cat.device("rtx-6000-ada").fp32_acc_share == 1.0
    assert cat.device("h100-pcie").fp32_acc_share == 1.0


def test_flash_attention_kq_runs_at_the_fp32_accumulate_rate():
    # fattn-mma-f16.cuh accumulates KQ in f32 and KQV in f16: halving the FP32-accumulate rate
    # makes KQ twice as slow and leaves KQV, so attention takes 1.5 times as long.
    req = _prefill_request(True)
    dev = req.devices[0]
    full = dataclasses.replace(dev, fp32_acc_share=1.0)
    half = dataclasses.replace(dev, fp32_acc_share=0.5)
    assert fit._attention_seconds(req, half, 8192, 512) == pytest.approx(
        1.5 * fit._attention_seconds(req, full, 8192, 512))


def test_current_builds_compute_kq_in_f32_without_flash_attention():
    # Current builds set GGML_PREC_F32 on KQ: 20 bytes of score traffic per head and cell instead of
    # the 24 of 2024 builds (KQ written in f16, then converted), and KQ at the FP32-accumulate rate.
    cat = load_catalog()
    assert cat.engine("llama.cpp").kq_precision == cat.engine("ollama").kq_precision == "f32"
    assert cat.engine("llama.cpp-2024-05").kq_precision == "f16"
    assert fit.SCORE_BYTES_FA_OFF == {"f16": 24, "f32": 20}
    current, old = _prefill_request(False), _prefill_request(False, engine="llama.cpp-2024-05")
    dev = dataclasses.replace(current.devices[0], l2_mib=0)
    old_traffic = fit._score_seconds(old, dev, 8192, 512)
    assert fit._score_seconds(current, dev, 8192, 512) == pytest.approx(20 / 24 * old_traffic)
    # On a GeForce card the f32 KQ product is slower; without the halving it costs what f16 does.
    pro = dataclasses.replace(dev, fp32_acc_share=1.0)
    products = {name: fit._attention_seconds(r, d, 8192, 512) - fit._score_seconds(r, d, 8192, 512)
                for name, r, d in (("geforce", current, dev), ("pro", current, pro), ("old", old, dev))}
    assert products["geforce"] > products["pro"] == pytest.approx(products["old"])


def test_prompt_after_a_cached_depth_takes_longer_than_the_same_prompt_from_empty():
    # llama-bench's pp512@d32768: 512 prompt tokens after 32768 already in the cache.
    req = _prefill_request(True)
    result = fit.fit(req)
    fresh = fit.time_to_first_token(req, result, 512)
    deep = fit.time_to_first_token(req, result, 512, start=32256)
    assert deep > 2 * fresh
    plan = make_plan("llama3.1:8b", ["rtx-4090"], 32768, prompt_tokens=512, prompt_start=32256)
    assert plan.time_to_first_token_s == pytest.approx(deep, rel=1e-4)


def test_current_builds_count_layer_latency_in_gpu_clock_cycles():
    # A token replayed as a CUDA graph waits on a chain of small kernels: cycles, so a faster clock shortens it.
    # Builds before that paid the host's launch cost per kernel: flat microseconds whatever the GPU.
    cat = load_catalog()
    current, old = cat.engine("llama.cpp"), cat.engine("llama.cpp-2024-05")
    fast, slow = cat.device("rtx-4090"), cat.device("rtx-3090")
    assert fit.layer_latency_s(current, fast) / fit.layer_latency_s(current, slow) == pytest.approx(1695 / 2520)
    assert fit.layer_latency_s(old, fast) == fit.layer_latency_s(old, slow) == pytest.approx(90e-6)
    unknown_clock = dataclasses.replace(fast, clock_mhz=0.0)
    assert fit.layer_latency_s(current, unknown_clock) == pytest.approx(current.per_layer_latency_us * 1e-6)


def test_a_higher_clock_speeds_up_a_small_model_more_than_a_large_one():
    cat = load_catalog()

    def gain(tag: str) -> float:
        choice = cat.model(tag)
        dev = cat.device("rtx-pro-6000")
        req = fit.FitRequest(choice.model.architecture(), choice.quant.quant_type(), choice.file_bytes, (dev,),
                             cat.engine("llama.cpp"), ctx=4096)
        slower = dataclasses.replace(req, devices=(dataclasses.replace(dev, clock_mhz=dev.clock_mhz / 2),))
        return fit.fit(req).decode_tok_s / fit.fit(slower).decode_tok_s

    assert gain("llama3.1:8b-instruct-q4_K_M") > gain("llama3.1:70b-instruct-q4_K_M") > 1.0


def test_power_limit_is_board_power_over_energy_per_sm_clock():
    cat = load_catalog()
    l4 = cat.device("l4")
    assert l4.board_power_w == 72 and l4.tensor_nj_per_sm_cycle > 0
    cap = fit.power_limited_rate(l4, 1024)
    assert cap == pytest.approx(72 / (l4.tensor_nj_per_sm_cycle * 1e-9) * 1024)
    assert fit.power_limited_rate(l4, 2048) == pytest.approx(2 * cap)  # int8 issue: twice the operations
    doubled = dataclasses.replace(l4, board_power_w=144)
    assert fit.power_limited_rate(doubled, 1024) == pytest.approx(2 * cap)
    # Unknown board power or energy: no limit.
    assert fit.power_limited_rate(dataclasses.replace(l4, board_power_w=0), 1024) == float("inf")
    assert fit.power_limited_rate(dataclasses.replace(l4, tensor_nj_per_sm_cycle=0), 1024) == float("inf")


def test_a_power_limited_kernel_runs_at_the_limit_whatever_its_wave_fill():
    dev = load_catalog().device("rtx-6000-ada")
    cap = fit.power_limited_rate(dev, dev.tensor_flops_per_clk)
    # Below the limit the idle SMs of the last wave cost time; at it, a fuller wave only draws more power.
    assert fit.sustained_rate(dev, cap, 0.5, dev.tensor_flops_per_clk) == pytest.approx(0.5 * cap)
    assert fit.sustained_rate(dev, 3 * cap, 0.5, dev.tensor_flops_per_clk) == pytest.approx(cap)
    assert fit.sustained_rate(dev, 3 * cap, 0.9, dev.tensor_flops_per_clk) == pytest.approx(cap)


def test_every_catalog_gpu_has_a_board_power_and_pro_cards_are_limited_where_geforce_ones_are_not():
    cat = load_catalog()
    assert all(g.board_power_w > 0 for g in cat.gpus.values())

    def prefill(gpu: str, tag: str, engine: str = "llama.cpp-2024-05", power: float | None = None) -> float:
        req = _prefill_request(False, engine=engine, gpu=gpu, tag=tag)
        if power is not None:
            req = dataclasses.replace(req, devices=(dataclasses.replace(req.devices[0], board_power_w=power),))
        return fit.fit(dataclasses.replace(req, ctx=512, depth=256)).prefill_tok_s

    big = "llama3.1:70b-instruct-q4_K_M"
    # Same AD102 chip and SM count: the 300 W RTX 6000 Ada is slower than the 350 W L40S on the 70B, and
    # would not be at the L40S's power.
    assert prefill("rtx-6000-ada", big) < 0.95 * prefill("l40s", big)  # measured 566 against 674 tok/s
    assert prefill("rtx-6000-ada", big, power=350) == pytest.approx(prefill("l40s", big), rel=0.05)
    # The RTX 4090's current-build MMQ weight products (int8 at about a quarter of its rate) stay below its 450 W.
    q4 = _prefill_request(True, gpu="rtx-4090")
    rate, _, _, ops = fit._matrix_path(q4, q4.devices[0])
    assert rate < 0.7 * fit.power_limited_rate(q4.devices[0], ops)
    # The 72 W L4 does not reach its SMs' rate on FP16 weights.
    f16 = "llama3.1:8b-instruct-fp16"
    assert prefill("l4", f16, "llama.cpp") < 0.8 * prefill("l4", f16, "llama.cpp", power=1e6)


def test_2024_cublas_ran_hopper_at_the_mma_sync_rate_in_sm80_tiles():
    # XiongjieDai's May 2024 notebooks: the H100 PCIe ran 1.36-1.40x an A100 PCIe, its SM x clock ratio 1.31.
    cat = load_catalog()
    assert cat.engine("llama.cpp-2024-05").cublas_sm90 == "mma_sync"
    assert cat.engine("llama.cpp").cublas_sm90 == cat.engine("ollama").cublas_sm90 == "wgmma"
    f16 = "llama3.1:8b-instruct-fp16"
    old = _prefill_request(False, engine="llama.cpp-2024-05", gpu="h100-pcie", tag=f16)
    new = _prefill_request(False, engine="llama.cpp", gpu="h100-pcie", tag=f16)
    h100 = old.devices[0]
    assert fit._cublas_kernel(old, h100) == (0.5, fit.SM80_CUBLAS_TILE)
    assert fit._cublas_kernel(new, h100) == (1.0, (0, 0))
    efficiency = old.engine.prefill_efficiency / new.engine.prefill_efficiency
    assert fit._matrix_path(old, h100)[0] == pytest.approx(0.5 * fit._matrix_path(new, h100)[0] * efficiency)
    # On an A100 (mma.sync reaches the full rate) the engines' cuBLAS kernels are the same.
    a100_old = dataclasses.replace(old, devices=(cat.device("a100-80gb-pcie"),))
    assert fit._cublas_kernel(a100_old, a100_old.devices[0]) == (1.0, (256, 128))


def test_prefill_layer_time_counts_gpu_clock_cycles_and_the_cublas_path_pays_more():
    # The 2024 builds' f16/f32 conversions and dequantize launches per layer and ubatch: small kernels over
    # activations the L2 holds, so a faster clock shortens them, like current builds' decode latency. MMQ quantizes
    # the input to q8_1 and writes f32 itself: fewer of them (engines.tsv prefill_layer_kcycles).
    cat = load_catalog()
    old, mmq = cat.engine("llama.cpp-2024-05"), cat.engine("llama.cpp")
    fast, slow = cat.device("rtx-4090"), cat.device("a100-80gb-pcie")
    assert old.prefill_layer_kcycles > mmq.prefill_layer_kcycles > 0
    clock = 2520e6 * cat.runtime["geforce_clock_headroom"]  # the RTX 4090's clock under load
    assert fit.prefill_layer_s(old, fast) == pytest.approx(old.prefill_layer_kcycles * 1e3 / clock)
    assert fit.prefill_layer_s(old, fast) / fit.prefill_layer_s(old, slow) == pytest.approx(1410e6 / clock)
    assert fit.prefill_layer_s(mmq, fast) == pytest.approx(mmq.prefill_layer_kcycles * 1e3 / clock)
    assert fit.prefill_layer_s(old, dataclasses.replace(fast, clock_mhz=0.0)) == 0.0


def test_older_builds_fp16_copy_streams_at_the_bytes_in_flight_ceiling():
    # The dequantize kernel of the cuBLAS path reads the quantized weights and writes two bytes per weight: on an
    # A100 (108 SMs, 390 ns) at SMs x bytes in flight / latency, not at its memory's 0.92 x 1935 GB/s.
    req = dataclasses.replace(_prefill_request(False, engine="llama.cpp-2024-05", gpu="a100-80gb-pcie"), ctx=512)
    a100 = req.devices[0]
    assert fit.decode_bandwidth(req.engine, a100) < 0.7 * req.engine.bandwidth_efficiency * a100.bandwidth_gbs * 1e9
    no_ceiling = dataclasses.replace(req, devices=(dataclasses.replace(a100, memory_latency_ns=0),))

    def per_token(r: fit.FitRequest) -> float:
        return fit.prefill_seconds_per_token(r, fit.fit(r).devices, 0, 256)

    arch = req.arch
    _, per_layer, _ = fit.weight_split(arch, req.quant, req.file_bytes)
    copy = arch.layers * (per_layer + 2 * fit.layer_params(arch)) / req.engine.batch_size
    memory = req.engine.bandwidth_efficiency * a100.bandwidth_gbs * 1e9  # the copy's rate without the ceiling
    slower = copy / fit.decode_bandwidth(req.engine, a100) - copy / memory
    assert per_token(req) - per_token(no_ceiling) == pytest.approx(slower, rel=1e-6)
    # MMQ builds make no copy: the ceiling does not touch their prefill.
    mmq = dataclasses.replace(req, engine=load_catalog().engine("llama.cpp"))
    mmq_free = dataclasses.replace(mmq, devices=no_ceiling.devices)
    assert per_token(mmq) == pytest.approx(per_token(mmq_free))


def test_moe_expert_tiles_are_as_wide_as_the_ubatch_needs_and_mostly_padding():
    # mul_mat_q_case sizes the column tile from the ubatch's tokens (ncols_max), not from an expert's share of them:
    # 512 tokens -> 128-wide tiles, of which an expert with 8 of 128 experts routed fills 32 columns.
    arch = load_catalog().model("qwen3-coder:30b").model.architecture()
    assert fit.expert_column_share(arch, 512) == pytest.approx(32 / 128)
    assert fit.expert_column_share(arch, 200) == pytest.approx(12.5 / 104, rel=1e-4)  # two tiles of 104: 200 tokens
    assert fit.expert_column_share(arch, 2048) == pytest.approx(1.0)  # 128 tokens per expert fill the tile
    dense = load_catalog().model("qwen2.5-coder:32b").model.architecture()
    assert fit.expert_column_share(dense, 512) == 1.0 and fit.expert_params(dense) == 0.0
    assert fit.expert_params(arch) == 8 * 3 * 768 * 2048


def test_moe_prefill_pays_for_the_padded_expert_tiles_on_the_mmq_path_only():
    req = _prefill_request(True, tag="qwen3-coder:30b-a3b-q4_K_M")
    dev = req.devices[0]
    padded = fit.fit(dataclasses.replace(req, ctx=512, depth=256)).prefill_tok_s
    with_full_tiles = fit.fit(dataclasses.replace(req, ctx=512, depth=256, arch=dataclasses.replace(
        req.arch, experts=req.arch.experts_used))).prefill_tok_s  # every expert used: no padding, same active work
    assert fit._runs_mmq(req, dev)
    assert with_full_tiles > 2 * padded
    # A dense model's prefill is untouched by the expert terms.
    dense = _prefill_request(True)
    assert fit.expert_params(dense.arch) == 0.0
    # FP16 weights run cuBLAS GEMMs, where no MMQ tile is padded.
    f16 = dataclasses.replace(req, quant=dataclasses.replace(req.quant, name="F16"))
    assert not fit._runs_mmq(f16, dev)


def test_a_moe_layer_adds_routing_latency_in_current_builds_only():
    cat = load_catalog()
    current, old = cat.engine("llama.cpp"), cat.engine("llama.cpp-2024-05")
    dev = cat.device("rtx-4090")
    assert current.moe_layer_kcycles > 0
    assert fit.layer_latency_s(current, dev, moe=True) == pytest.approx(
        (current.layer_latency_kcycles + current.moe_layer_kcycles) * 1e3 / (dev.clock_mhz * 1e6))
    assert fit.layer_latency_s(current, dev, moe=True) > fit.layer_latency_s(current, dev)
    assert fit.layer_latency_s(old, dev, moe=True) == fit.layer_latency_s(old, dev)  # flat microseconds
    moe = _prefill_request(True, tag="qwen3-coder:30b-a3b-q4_K_M")
    no_routing = dataclasses.replace(moe, engine=dataclasses.replace(moe.engine, moe_layer_kcycles=0.0))
    assert fit.fit(no_routing).decode_tok_s > fit.fit(moe).decode_tok_s


def test_experts_no_token_is_routed_to_are_neither_read_nor_multiplied():
    # 16 tokens choosing 8 of 128 experts each leave (120/128)^16 = 36 % of the experts without a token: MMQ skips
    # their tiles and nothing reads their weights. At 512 tokens every expert has some.
    arch = load_catalog().model("qwen3-coder:30b").model.architecture()
    assert fit.experts_hit_share(arch, 16) == pytest.approx(1 - (120 / 128) ** 16)
    assert fit.experts_hit_share(arch, 512) > 0.999
    assert fit._weights_read_share(arch, 16) < 0.7 and fit._weights_read_share(arch, 512) > 0.999
    # An expert that has tokens gets one tile of the ubatch's width: 16 tokens -> 16-wide tiles, 1.55 tokens in each.
    assert fit.expert_column_share(arch, 16) == pytest.approx(1.0 / (fit.experts_hit_share(arch, 16) * 16))
    dense = load_catalog().model("qwen2.5-coder:32b").model.architecture()
    assert fit._weights_read_share(dense, 16) == 1.0


def test_prefill_pays_a_layers_kernel_chain_once_per_ubatch_in_current_builds():
    # The small dependent kernels of a layer (decode's layer_latency_s) run once per ubatch in prefill too: a
    # 16-token ubatch pays them on 16 tokens, a 512-token one on 512.
    req = dataclasses.replace(_prefill_request(True), ctx=4096, depth=2048)
    no_chain = dataclasses.replace(req, engine=dataclasses.replace(req.engine, layer_latency_kcycles=0.0))
    dev = req.devices[0]

    def per_token(r: fit.FitRequest, chunk: int) -> float:
        return fit.prefill_seconds_per_token(r, fit.fit(r).devices, 0, 2048, chunk)

    for chunk in (16, 512):
        extra = per_token(req, chunk) - per_token(no_chain, chunk)
        assert extra == pytest.approx(req.arch.layers * fit.layer_latency_s(req.engine, dev) / chunk, rel=1e-6)


def test_plan_takes_a_microbatch_size():
    default = make_plan("qwen3-coder:30b-a3b-q4_K_M", ["rtx-4090"], 4096)
    small = make_plan("qwen3-coder:30b-a3b-q4_K_M", ["rtx-4090"], 4096, ubatch=64)
    assert small.time_to_first_token_s > default.time_to_first_token_s
    assert make_plan("qwen3-coder:30b-a3b-q4_K_M", ["rtx-4090"], 4096, ubatch=512) == default
    with pytest.raises(UserInputError, match="ubatch 0"):
        make_plan("qwen3-coder:30b-a3b-q4_K_M", ["rtx-4090"], 4096, ubatch=0)


def test_mmq_runs_no_faster_per_sm_clock_on_wider_tensor_cores():
    # engines.tsv mmq_sm_ops_per_clk: MMQ's loads and unpacking, not its MMAs, set its pace per SM; the GeForce and RTX
    # cards it is fitted on issue 2048 int8 ops per SM per clock, the data-center cards' wider tensor cores more.
    cat = load_catalog()
    eng = cat.engine("llama.cpp")
    for slug in ("rtx-3090", "rtx-4090", "rtx-5090", "rtx-pro-6000", "l40s"):
        dev = cat.device(slug)
        assert fit.mmq_ops_per_clk(eng, dev) == dev.int8_ops_per_clk * dev.mma_sync_share == 2048, slug
    for slug in ("a100-80gb-sxm", "h100-sxm", "h200", "b200"):
        dev = cat.device(slug)
        assert dev.int8_ops_per_clk * dev.mma_sync_share > 2048 and fit.mmq_ops_per_clk(eng, dev) == 2048, slug

    def prefill(gpu: str, engine: fit.Engine = eng) -> float:
        req = dataclasses.replace(_prefill_request(True, gpu=gpu), engine=engine)
        return fit.fit(req).prefill_tok_s

    # So a quantized prompt follows SMs x clock: an H100 SXM (132 x 1980 MHz) at about 0.8x an RTX 4090
    # (128 x 2520 MHz), as the llama.cpp scoreboard measured (0.83x); without the bound it would be 1.6x.
    h100, rtx = cat.device("h100-sxm"), cat.device("rtx-4090")
    sm_clock = h100.sm_count * h100.clock_mhz / (rtx.sm_count * rtx.clock_mhz)
    assert prefill("h100-sxm") / prefill("rtx-4090") == pytest.approx(sm_clock, rel=0.15)
    unbound = dataclasses.replace(eng, mmq_sm_ops_per_clk=0.0)
    assert prefill("h100-sxm", unbound) > 1.5 * prefill("h100-sxm")
    assert prefill("rtx-4090", unbound) == pytest.approx(prefill("rtx-4090"))


def test_geforce_cards_run_above_their_rated_boost_clock_and_other_cards_at_it():
    # runtime.tsv geforce_clock_headroom: GPU Boost takes GeForce cards past the rated boost clock under load
    # (reported stock clocks 1.05-1.18x it); professional and data-center cards are counted at theirs.
    cat = load_catalog()
    headroom = cat.runtime["geforce_clock_headroom"]
    assert 1.0 < headroom <= 1.2
    for slug in ("rtx-3090", "rtx-4090", "rtx-5090"):
        assert cat.gpus[slug].geforce
        assert cat.device(slug).clock_mhz == pytest.approx(cat.gpus[slug].boost_clock_mhz * headroom)
    for slug in ("rtx-a6000", "rtx-6000-ada", "rtx-pro-6000", "l40s", "a100-80gb-sxm", "h200"):
        assert not cat.gpus[slug].geforce
        assert cat.device(slug).clock_mhz == cat.gpus[slug].boost_clock_mhz
    # The clock reaches the speed model: at its rated clock the RTX 4090's current-build prompt would be slower,
    # and its per-layer decode latency (in clock cycles) longer.
    req = _prefill_request(False)
    rated = dataclasses.replace(req, devices=(dataclasses.replace(req.devices[0],
                                                                  clock_mhz=cat.gpus["rtx-4090"].boost_clock_mhz),))
    assert fit.fit(rated).prefill_tok_s < 0.95 * fit.fit(req).prefill_tok_s
    assert fit.layer_latency_s(req.engine, rated.devices[0], False) == pytest.approx(
        headroom * fit.layer_latency_s(req.engine, req.devices[0], False))


def test_plans_on_cards_starved_of_power_per_sm_say_their_prompt_estimate_is_an_upper_bound():
    # The scoreboard's RTX 6000 Ada, L40, RTX PRO 4000 and PRO 6000 Max-Q posts (held out) prefill 14-27 % below
    # the model; it does not model why, so the plan says so. GeForce cards and F16 weights (cuBLAS) get no note.
    def notes(gpu: str, tag: str = "qwen2.5-coder:7b") -> list[str]:
        return [n for n in make_plan(tag, [gpu], 4096, "f16", True).notes if n.startswith("prompt speed")]

    for gpu in ("rtx-6000-ada", "l40", "rtx-pro-4000", "rtx-pro-6000-maxq", "l4"):
        assert len(notes(gpu)) == 1 and gpu in notes(gpu)[0]
    for gpu in ("rtx-4090", "rtx-5090", "rtx-3060-12gb", "rtx-pro-6000", "h200"):
        assert notes(gpu) == []
    assert notes("rtx-6000-ada", "llama3.1:8b-instruct-fp16") == []
    # A device of unknown board power (0) is not taken for a starved one.
    req = _prefill_request(False, gpu="rtx-6000-ada")
    unknown = dataclasses.replace(req, devices=(dataclasses.replace(req.devices[0], board_power_w=0.0),))
    assert not any(n.startswith("prompt speed") for n in fit.fit(unknown).notes)
    assert any(n.startswith("prompt speed") for n in fit.fit(req).notes)


def test_a_unified_memory_gpu_leaves_the_idle_os_its_share_and_says_so():
    # DGX Spark: nvidia-smi prints no memory.total; the pool is the host's own (gpu_shared_memory.tsv: 3994 MiB held
    # by an idle OS in Ollama's log), so usable memory leaves that too, and the plan says every program shares it.
    cat = load_catalog()
    spark = cat.gpu("dgx-spark")
    plan = make_plan("qwen2.5-coder:7b", ["dgx-spark"], 4096)
    # Its memory_total_mib is CUDA's own total (llama.cpp's VRAM line): no driver reservation comes off it.
    assert spark.host_shared_mib == 3994 and plan.usable_mib == spark.vram_mib - 3994
    assert any(n.startswith("unified memory (dgx-spark)") for n in plan.notes)
    discrete = make_plan("qwen2.5-coder:7b", ["rtx-4090"], 4096)
    assert cat.gpu("rtx-4090").host_shared_mib == 0 and not any("unified memory" in n for n in discrete.notes)


def test_a_laptop_plan_says_what_a_prompt_takes_at_the_lowest_power_its_makers_ship():
    # The RTX 4090 Laptop GPU runs at 80-175 W as its laptop's maker set it (gpu_power_range.tsv): the plan is at
    # 175 W and its note gives the prompt speed at 80 W, where the tensor work's power limit binds harder.
    plan = make_plan("qwen2.5-coder:14b", ["rtx-4090-laptop"], 16384)
    [note] = [n for n in plan.notes if n.startswith("power limit set by the laptop's maker")]
    low, ttft, decode = (float(x) for x in re.search(
        r"about (\d+) tok/s prefill, ([\d.]+) s to the first token and (\d+) tok/s decode", note).groups())
    assert "rtx-4090-laptop 80-175 W" in note
    assert 0.4 * plan.prefill_tok_s < low < 0.9 * plan.prefill_tok_s and ttft > plan.time_to_first_token_s
    # Decode reads memory, whose speed the power limit leaves alone: it slows far less than the prompt.
    assert 0.85 * plan.decode_tok_s < decode <= plan.decode_tok_s
    # A lower ceiling is a slower prompt: the same card planned at its lowest limit agrees with the note.
    cat = load_catalog()
    req = _prefill_request(False, gpu="rtx-4090-laptop")
    at_80 = dataclasses.replace(req, devices=(dataclasses.replace(req.devices[0], board_power_w=80.0),))
    assert fit.fit(at_80).prefill_tok_s < fit.fit(req).prefill_tok_s
    assert cat.gpu("rtx-4090").board_power_min_w == 0
    # recommend plans many settings and shows no plan notes: it skips the second fit.
    quiet = make_plan("qwen2.5-coder:14b", ["rtx-4090-laptop"], 16384, low_power_note=False)
    assert not any(n.startswith("power limit") for n in quiet.notes) and quiet.prefill_tok_s == plan.prefill_tok_s
    assert not any(n.startswith("power limit") for n in make_plan("qwen2.5-coder:14b", ["rtx-4090"], 16384).notes)


def test_a_laptop_plan_at_its_makers_power_limit_slows_the_prompt_not_the_memory():
    # An RTX 4090 Laptop GPU in a laptop whose maker set 120 W (of NVIDIA's 80-175 W): a lower boost clock and a
    # lower cap on tensor work slow the prompt; memory use and the fit are unchanged, and decode changes little.
    cat = load_catalog()
    laptop = cat.gpu("rtx-4090-laptop")
    top = make_plan("qwen2.5-coder:14b", ["rtx-4090-laptop"], 16384)
    at_120 = make_plan("qwen2.5-coder:14b", ["rtx-4090-laptop"], 16384, power_limit_w=120)
    assert top.power_limit_w is None and at_120.power_limit_w == 120
    assert at_120.prefill_tok_s < 0.95 * top.prefill_tok_s and at_120.time_to_first_token_s > top.time_to_first_token_s
    assert at_120.vram_mib == top.vram_mib and at_120.fits and 0.9 * top.decode_tok_s < at_120.decode_tok_s
    assert any(n.startswith("power limit 120 W, as the laptop's maker set it") for n in at_120.notes)
    assert not any(n.startswith("power limit set by the laptop's maker") for n in at_120.notes)
    # A lower limit is never faster; the lowest is the plan's own low-power note.
    speeds = [make_plan("qwen2.5-coder:7b", ["rtx-4090-laptop"], 4096, power_limit_w=w).prefill_tok_s
              for w in (80, 100, 140, 175)]
    assert speeds == sorted(speeds) and speeds[0] < speeds[-1]
    [note] = [n for n in top.notes if n.startswith("power limit set by the laptop's maker")]
    low = make_plan("qwen2.5-coder:14b", ["rtx-4090-laptop"], 16384, power_limit_w=laptop.board_power_min_w)
    assert f"about {low.prefill_tok_s:.0f} tok/s prefill" in note
    # Between the two clocks the clock is linear in the limit: the top clock is given at the top of the range
    # without Dynamic Boost (150 W of 80-175), and held above it.
    device = cat.device("rtx-4090-laptop")
    assert laptop.top_tgp_w == 150
    middle = planner.at_power_limit(device, laptop, (laptop.board_power_min_w + laptop.top_tgp_w) / 2)
    ends = (laptop.boost_clock_min_mhz + laptop.boost_clock_mhz) / 2
    assert middle.clock_mhz == pytest.approx(device.clock_mhz * ends / laptop.boost_clock_mhz)
    for watts in (150, 175):
        assert planner.at_power_limit(device, laptop, watts).clock_mhz == pytest.approx(device.clock_mhz)
    # A limit outside NVIDIA's range is no laptop's: refused, as is one limit for two laptop GPU models.
    for watts in (20, 200):
        with pytest.raises(UserInputError, match="outside the 80-175 W NVIDIA lists for rtx-4090-laptop"):
            make_plan("qwen2.5-coder:7b", ["rtx-4090-laptop"], 4096, power_limit_w=watts)
    with pytest.raises(UserInputError, match="one laptop GPU model at a time"):
        make_plan("qwen2.5-coder:7b", ["rtx-4090-laptop", "rtx-3050-laptop"], 4096, power_limit_w=80)
    # A part whose bottom clock was not found keeps its clock: only the power cap moves, and the plan says so.
    a5000 = make_plan("qwen2.5-coder:7b", ["rtx-a5000-laptop"], 4096, power_limit_w=80)
    assert any(n.startswith("rtx-a5000-laptop: its clock at the bottom of its range was not found")
               for n in a5000.notes)
    assert not any("lowers the boost clock" in n for n in a5000.notes)
    # Blackwell has no fitted energy per clock: only the clock moves, and the plan says so.
    blackwell = make_plan("qwen2.5-coder:7b", ["rtx-5090-laptop"], 4096, power_limit_w=100)
    assert any(n.startswith("rtx-5090-laptop (blackwell): no measurement") for n in blackwell.notes)
    assert blackwell.prefill_tok_s < make_plan("qwen2.5-coder:7b", ["rtx-5090-laptop"], 4096).prefill_tok_s


def test_a_power_limit_on_a_desktop_card_is_refused_with_what_to_do_instead():
    # A desktop card's speed under `nvidia-smi -pl` follows its own voltage and memory power: the RTX 3090 and RTX PRO
    # 6000 sweeps in benchmarks/calibration.tsv share no curve, so the planner does not guess one.
    with pytest.raises(UserInputError, match="laptop GPUs.*rtx-3090.*coderig-deploy probe"):
        make_plan("qwen2.5-coder:32b", ["rtx-3090", "rtx-3090"], 16384, power_limit_w=250)
    with pytest.raises(UserInputError, match="positive number of watts"):
        make_plan("qwen2.5-coder:7b", ["rtx-4090-laptop"], 4096, power_limit_w=0)


def test_a_plan_on_turing_says_its_speeds_are_upper_bounds():
    # No fit row measures Turing; its held-out rows (gpu_architectures.tsv plan_note) are far slower than predicted.
    # Its memory is planned as any card's: a T4's 15360 MiB (ECC on) holds a 7B Q4_K_M at 16K.
    t4 = make_plan("qwen2.5-coder:7b", ["t4"], 16384)
    [note] = [n for n in t4.notes if n.startswith("turing GPU: ")]
    assert "1.7x" in note and t4.fits and t4.usable_mib < 15360
    assert not any(n.startswith("turing") for n in make_plan("qwen2.5-coder:7b", ["rtx-3090"], 16384).notes)


def test_memory_a_read_benchmark_measured_below_the_fitted_share_is_taken_as_is():
    # DGX Spark: LPDDR5x streams 233 GB/s of its 273 (gpu_read_bandwidth.tsv), below 0.92 x 273 = 251; cards without a
    # measured figure keep engines.tsv's share of their spec.
    cat = load_catalog()
    eng = cat.engine("llama.cpp")
    spark, rtx = cat.device("dgx-spark"), cat.device("rtx-4090")
    assert fit.memory_bandwidth(eng, spark) == pytest.approx(233e9)
    assert fit.memory_bandwidth(eng, rtx) == pytest.approx(eng.bandwidth_efficiency * 1008e9)
    # Decode reads at the measured figure (its bytes-in-flight ceiling, 48 SMs at 416 ns, is far above it).
    unmeasured = dataclasses.replace(spark, read_gbs=0.0)
    assert fit.decode_bandwidth(eng, spark) == pytest.approx(233e9)
    assert fit.decode_bandwidth(eng, unmeasured) == pytest.approx(eng.bandwidth_efficiency * 273e9)
