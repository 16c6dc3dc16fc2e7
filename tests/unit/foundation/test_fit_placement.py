"""Placement across GPUs, partial offload, compute buffers and speed."""

import pytest

from coderig_deploy import fit
from coderig_deploy.catalog import load_catalog
from coderig_deploy.planner import make_plan


@pytest.mark.parametrize(
    "slots, caps, expected",
    [
        (81, [24, 24], [41, 40]),
        (81, [24, 24, 24, 24], [21, 20, 20, 20]),
        (65, [24, 12], [44, 21]),
        (10, [1], [10]),
    ],
)
def test_assign_layers_in_proportion_to_memory(slots, caps, expected):
    assert fit.assign_layers(slots, caps) == expected


def test_split_over_two_gpus_puts_output_on_the_last():
    plan = make_plan("llama3.1:70b", ["rtx-4090", "rtx-4090"], 8192)
    a, b = plan.per_gpu
    assert plan.fits and plan.gpu_fraction == 1.0
    assert a.layers + b.layers == 80
    assert a.layers == 41 and b.layers == 39  # 81 slots: the output layer takes the last GPU's 40th
    # The last GPU holds the output layer (~705 MiB of Q6_K) and the logits buffer.
    assert b.weights_mib > a.weights_mib - 2 * (a.weights_mib / a.layers)
    assert b.compute_mib > a.compute_mib
    assert a.overhead_mib == b.overhead_mib > 0


def test_split_over_four_gpus():
    plan = make_plan("llama3.1:70b-instruct-q8_0", ["rtx-3090"] * 4, 8192)
    assert plan.fits
    assert [g.layers for g in plan.per_gpu] == [21, 20, 20, 19]
    assert sum(g.weights_mib for g in plan.per_gpu) == pytest.approx(plan.weights_mib, abs=4)
    two = make_plan("llama3.1:70b-instruct-q8_0", ["rtx-3090"] * 2, 8192)
    assert not two.fits


def test_model_that_fits_one_gpu_stays_on_one_unless_spread():
    plan = make_plan("llama3.1:8b", ["rtx-4090", "rtx-4090"], 8192)
    assert [g.layers for g in plan.per_gpu] == [32, 0]
    assert plan.per_gpu[1].used_mib == 0
    spread = make_plan("llama3.1:8b", ["rtx-4090", "rtx-4090"], 8192, spread=True)
    assert all(g.layers > 0 for g in spread.per_gpu)


def test_partial_offload_when_it_does_not_fit():
    plan = make_plan("llama3.1:70b", ["rtx-4090"], 8192)
    assert not plan.fits
    assert 0.3 < plan.gpu_fraction < 0.7
    assert plan.layers_on_gpu < plan.layers_total
    assert plan.cpu_weights_mib > 15_000
    assert plan.per_gpu[0].used_mib <= plan.per_gpu[0].total_mib - plan.margin_mib
    assert plan.ps_size_vram_mib < plan.ps_size_mib
    # The seed: "a single RTX 4090 runs Llama 3.1 70B at ~4 tok/s with heavy CPU offload".
    assert 2 < plan.decode_tok_s < 6
    full = make_plan("llama3.1:70b", ["rtx-4090", "rtx-4090"], 8192)
    assert full.decode_tok_s > 3 * plan.decode_tok_s


def test_no_gpu_runs_everything_from_ram():
    plan = make_plan("qwen2.5-coder:7b", [], 4096)
    assert not plan.fits and plan.gpu_fraction == 0 and plan.vram_mib == 0
    assert plan.decode_tok_s > 0


def test_flash_attention_off_grows_compute_with_context():
    on_small = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 4096, flash_attention=True)
    on_large = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 16384, flash_attention=True)
    off_small = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 4096, flash_attention=False)
    off_large = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 16384, flash_attention=False)
    # Tiled: the layers' peak stays below the output layer's (512 x (152064 + 5120) x 4 B = 307 MiB) at both.
    assert on_large.compute_mib == on_small.compute_mib == 307
    # KQ scores: 512 x ctx x 40 heads x 4 B -> 320 MiB at 4096, 1280 MiB at 16384; the f32 mask 8 -> 32 MiB
    assert off_large.compute_mib - off_small.compute_mib == pytest.approx(1280 - 320 + 32 - 8, abs=2)
    assert off_small.compute_mib > on_small.compute_mib


MODELS = load_catalog().models


@pytest.mark.parametrize(
    "model, cells, flash_attention, logged_mib",
    [
        # Public llama.cpp load logs, "CUDA0 compute buffer size", one ubatch of 512, every layer on the GPU:
        ("llama3.1-8b", 512, False, 258.50),  # llama-cpp-python, Llama 3 8B Q4_K_M, n_ctx 512 (README of
        #                                       developer0hye/llama-3-korean-bllossom-8b-q4-docker)
        ("qwen2.5-coder-7b", 4096, True, 304.00),  # Ollama, Qwen2.5-Coder 7B Q4_K_M, n_ctx 4096 (a WSL2 log)
        ("llama3.1-8b", 8192, False, 560.00),  # Ollama (June 2025), DeepSeek R1 Distill Llama 8B, 4 x 2048 cells
        #                                        (deipss/blog, "ollama 生成中断")
    ],
)
def test_compute_buffer_matches_llama_cpp_logs(model, cells, flash_attention, logged_mib):
    """The graph allocator's peak is the larger of a layer's and the output layer's, not their sum: the first
    two logs are the logits of 512 tokens plus one hidden state exactly, the third the KQ scores plus the mask
    and four hidden states."""
    arch = MODELS[model].architecture()
    got = fit.compute_buffer_bytes(arch, cells, 512, flash_attention, with_output=True, layers=arch.layers) / fit.MIB
    assert got == pytest.approx(logged_mib, abs=0.01)


# A CPU-only llama.cpp build's own graph allocator on the probe's files (benchmarks/probe_llama_cpp.py
# --compute-buffers; llama.cpp 0c1e570, Oct 2026, one ubatch of 512): "CPU compute buffer size" as it logs it.
@pytest.mark.parametrize(
    "model, cells, flash_attention, logged_mib",
    [
        # Without flash attention the KQ scores decide from 4096 cells: a layer's peak.
        ("llama3.1-8b", 4096, False, 308.01),
        ("llama3.1-8b", 16384, False, 1100.01),
        ("qwen2.5-coder-32b", 4096, False, 382.01),
        ("qwen2.5-coder-32b", 16384, False, 1366.01),
        ("qwen2.5-coder-1.5b", 16384, False, 432.01),
        ("qwen3-coder-30b", 16384, False, 1086.01),  # mixture of experts: 8 experts' intermediates per token
        # Otherwise the logits decide: the output layer's peak.
        ("qwen3-coder-30b", 4096, True, 304.75),
        ("qwen2.5-coder-1.5b", 16384, True, 302.75),
        ("llama3.1-8b", 16384, True, 266.50),
    ],
)
def test_compute_buffer_matches_llama_cpps_allocator_on_the_cpu(model, cells, flash_attention, logged_mib):
    """A CPU-only run also keeps the ubatch's input embeddings (512 x hidden, f32) in its compute buffer, where a
    GPU run has them in system RAM; with them added the plan is at most 10.01 MiB (1.3 %) below the allocator's,
    and equal where the logits decide. (deepseek-coder and starcoder2, where a layer's own peak decides, are up to
    22 MiB low and 72 MiB high: docs/probe.md.)"""
    arch = MODELS[model].architecture()
    got = fit.compute_buffer_bytes(arch, cells, 512, flash_attention, with_output=True, layers=arch.layers)
    input_embeddings = 512 * arch.hidden * fit.F32
    assert 0 <= logged_mib - (got + input_embeddings) / fit.MIB <= 10.01


@pytest.mark.parametrize("cells, logged_mib", [(2048, 164.00), (32768, 2144.00)])
def test_compute_buffer_grows_with_the_score_matrix_as_logged(cells, logged_mib):
    """A llama-server log of one model at two contexts without flash attention (fedora-copr/logdetective PR #106,
    Jan 2025; the model is not named, its KV buffer and rope base are Mistral 7B's): the layer peak, KQ scores +
    the f32 mask + four hidden states, is 164.00 and 2144.00 MiB to the digit."""
    mistral_7b = fit.Architecture(layers=32, heads=32, kv_heads=8, hidden=4096, head_dim=128, ffn=14336,
                                  vocab=32768, params_b=7.25, active_params_b=7.25)
    got = fit.compute_buffer_bytes(mistral_7b, cells, 512, False, with_output=True, layers=32) / fit.MIB
    assert got == pytest.approx(logged_mib, abs=0.01)


def test_compute_buffer_of_a_layer_only_device_has_no_logits():
    arch = MODELS["qwen2.5-coder-7b"].architecture()
    first = fit.compute_buffer_bytes(arch, 4096, 512, True, with_output=False, layers=14)
    last = fit.compute_buffer_bytes(arch, 4096, 512, True, with_output=True, layers=14)
    assert first < 0.5 * last  # the logits (297 MiB) dominate the device with the output layer
    assert fit.compute_buffer_bytes(arch, 4096, 512, True, with_output=False, layers=0) == 0


def test_speed_scales_with_bandwidth_and_size():
    fast = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 4096).decode_tok_s
    slow = make_plan("qwen2.5-coder:14b", ["rtx-4070"], 4096).decode_tok_s
    bigger = make_plan("qwen2.5-coder:32b", ["rtx-4090"], 4096).decode_tok_s
    assert fast > slow > 0 and fast > bigger
    assert 1.4 < fast / slow < 2.0  # bandwidth ratio 1008/504 = 2, damped by per-layer latency


def test_moe_reads_only_active_experts():
    moe = make_plan("qwen3-coder:30b", ["rtx-4090"], 8192)
    dense = make_plan("qwen2.5-coder:32b", ["rtx-4090"], 8192)
    assert moe.fits and moe.decode_tok_s > 3 * dense.decode_tok_s


def test_fits_keeps_the_stated_margin_on_every_gpu():
    plan = make_plan("llama3.1:70b", ["rtx-4090", "rtx-4090"], 32768, "q8_0")
    assert plan.fits
    assert all(g.used_mib <= g.total_mib - plan.margin_mib for g in plan.per_gpu)
    assert not make_plan("llama3.1:70b", ["rtx-4090", "rtx-4090"], 32768, "f16").fits


def test_num_gpu_caps_the_layers_offloaded():
    base = make_plan("qwen2.5-coder:14b", ["rtx-4090"], 8192)
    from coderig_deploy import fit
    from coderig_deploy.catalog import load_catalog

    cat = load_catalog()
    choice = cat.model("qwen2.5-coder:14b")
    req = fit.FitRequest(choice.model.architecture(), choice.quant.quant_type(), choice.file_bytes,
                         (cat.gpu("rtx-4090").device(),), cat.engine(), ctx=8192, num_gpu=25)
    capped = fit.fit(req)
    assert base.fits and not capped.fits
    assert capped.layers_on_gpu == 25 and capped.devices[0].layers == 25
    assert capped.ps_size_vram_bytes < capped.ps_size_bytes
    assert capped.decode_tok_s < base.decode_tok_s / 2
