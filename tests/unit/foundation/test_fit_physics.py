"""The speed and memory model's physics: compute ceiling, prefill, time to first token, context size, usable memory."""

import dataclasses

import pytest

from coderig_deploy import fit
from coderig_deploy.catalog import load_catalog
from coderig_deploy.planner import make_plan


def test_hbm_gpus_decode_well_below_the_bandwidth_roofline():
    # reference/real-gpu-notes.md: llama.cpp decoded Q4_K_M at 25-40 % of the roofline on an H200.
    for tag in ("llama3.1:70b-instruct-q4_K_M", "qwen2.5-coder:32b-instruct-q4_K_M"):
        plan = make_plan(tag, ["h200"], 4096)
        roofline = 4800e9 / (plan.weights_mib * fit.MIB)
        assert 0.25 <= plan.decode_tok_s / roofline <= 0.40, tag


def test_gddr_gpus_stay_near_the_bandwidth_roofline():
    plan = make_plan("qwen2.5-coder:32b-instruct-q4_K_M", ["rtx-3090"], 4096)
    roofline = 936e9 / (plan.weights_mib * fit.MIB)
    assert plan.decode_tok_s / roofline > 0.7


def test_compute_ceiling_binds_only_when_it_is_slower():
    cat = load_catalog()
    choice = cat.model("llama3.1:70b-instruct-q4_K_M")
    dev = cat.device("h200")
    req = fit.FitRequest(choice.model.architecture(), choice.quant.quant_type(), choice.file_bytes, (dev,),
                         cat.engine(), ctx=4096)
    no_compute = dataclasses.replace(req, devices=(dataclasses.replace(dev, int_lanes_per_sm=0),))
    assert fit.fit(req).decode_tok_s < fit.fit(no_compute).decode_tok_s


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



def _prefill_request(flash_attention: bool, engine: str = "llama.cpp") -> fit.FitRequest:
    cat = load_catalog()
    choice = cat.model("llama3.1:8b-instruct-q4_K_M")
    return fit.FitRequest(choice.model.architecture(), choice.quant.quant_type(), choice.file_bytes,
                          (cat.device("rtx-4090"),), cat.engine(engine), ctx=32768, flash_attention=flash_attention)


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
    assert per_token(fa_off, 256) > per_token(fa_on, 256)


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
    assert fit._attention_seconds(req, dev, cells) == fit._attention_seconds(slower_int8, slower_int8.devices[0], cells)
    assert fit._matrix_rate(slower_int8, slower_int8.devices[0])[0] < fit._matrix_rate(req, dev)[0]


def test_cuda_context_grows_with_sm_count():
    small = make_plan("qwen2.5-coder:7b", ["rtx-4060"], 4096).overhead_mib
    large = make_plan("qwen2.5-coder:7b", ["h200"], 4096).overhead_mib
    assert large == pytest.approx(526, abs=2)  # reference/real-gpu-notes.md: bare context on the H200
    assert small < large


def test_usable_memory_is_total_less_reserved():
    plan = make_plan("qwen2.5-coder:7b", ["h200"], 4096)
    assert plan.per_gpu[0].total_mib == 143771
    assert plan.usable_mib == pytest.approx(143771 - 616, abs=2)


def test_every_catalog_gpu_has_compute_facts():
    cat = load_catalog()
    for slug, gpu in cat.gpus.items():
        dev = cat.device(slug)
        assert dev.int_ops_per_s > 0 and dev.tensor_flops_per_s > 0, slug
        assert gpu.source and gpu.architecture in cat.architectures
