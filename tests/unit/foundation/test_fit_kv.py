"""KV cache size: layers x ctx x parallel x kv_heads x head_dim x 2 x bytes/element, exactly."""

import pytest

from coderig_deploy import fit
from coderig_deploy.catalog import load_catalog
from coderig_deploy.planner import make_plan

MIB = 1 << 20


def arch(key: str) -> fit.Architecture:
    return load_catalog().models[key].architecture()


# Hand-computed: qwen2.5-coder-32b is GQA (64 layers, 8 KV heads of 128).
#   f16, 8192 ctx: 64*8192*8*128*2*2 = 2_147_483_648 B = 2048 MiB
#   q8_0: x 34/32 / 2 = 1088 MiB; q4_0: x 18/32 / 2 = 576 MiB
# deepseek-coder-6.7b is MHA (32 layers, 32 KV heads of 128).
#   f16, 4096 ctx: 32*4096*32*128*2*2 = 2_147_483_648 B = 2048 MiB; q8_0 1088; q4_0 576
# llama3.1-70b, f16, 16384 ctx, parallel 2: 80*16384*2*8*128*2*2 = 10_737_418_240 B = 10240 MiB
@pytest.mark.parametrize(
    "key, ctx, parallel, cache, expected_bytes",
    [
        ("qwen2.5-coder-32b", 8192, 1, "f16", 2_147_483_648),
        ("qwen2.5-coder-32b", 8192, 1, "q8_0", 1_140_850_688),
        ("qwen2.5-coder-32b", 8192, 1, "q4_0", 603_979_776),
        ("deepseek-coder-6.7b", 4096, 1, "f16", 2_147_483_648),
        ("deepseek-coder-6.7b", 4096, 1, "q8_0", 1_140_850_688),
        ("deepseek-coder-6.7b", 4096, 1, "q4_0", 603_979_776),
        ("llama3.1-70b", 16384, 2, "f16", 10_737_418_240),
        ("qwen2.5-coder-1.5b", 1000, 1, "f16", 28 * 1000 * 2 * 128 * 2 * 2),
    ],
)
def test_kv_cache_bytes_exact(key, ctx, parallel, cache, expected_bytes):
    assert fit.kv_cache_bytes(arch(key), ctx, parallel, cache) == expected_bytes


@pytest.mark.parametrize("cache, expected_mib", [("f16", 2048), ("q8_0", 1088), ("q4_0", 576)])
def test_plan_reports_kv_cache_of_each_type(cache, expected_mib):
    plan = make_plan("qwen2.5-coder:32b", ["rtx-4090"], 8192, cache, flash_attention=True)
    assert plan.fits
    assert plan.kv_cache_mib == expected_mib


def test_parallel_multiplies_the_cache():
    one = make_plan("llama3.1:8b", ["rtx-4090"], 8192, parallel=1)
    four = make_plan("llama3.1:8b", ["rtx-4090"], 8192, parallel=4)
    assert four.kv_cache_mib == 4 * one.kv_cache_mib == 4 * 1024


def test_quantized_cache_without_flash_attention_falls_back_to_f16():
    plan = make_plan("qwen2.5-coder:32b", ["rtx-4090"], 8192, "q8_0", flash_attention=False)
    assert plan.kv_cache_mib == 2048
    assert any("flash attention" in n for n in plan.notes)
