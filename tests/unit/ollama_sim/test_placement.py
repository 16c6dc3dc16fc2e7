"""/api/ps numbers come from the project's fit model (the same function the planner uses)."""

import io
import json
import pytest

from coderig_deploy import fit
from coderig_deploy.catalog import load_catalog
from coderig_deploy.planner import make_plan
from coderig_deploy.sandbox.ollama_sim.gguf import read_metadata
from coderig_deploy.sandbox.ollama_sim.placement import Gpu, Planner, architecture
from coderig_deploy.sandbox.ollama_sim.scheduler import auto_context
from coderig_deploy.sandbox.release import catalog_facts
from coderig_deploy.sandbox.synthetic_models import build

MIB = 1 << 20


def _info(tag: str) -> tuple[dict, int]:
    choice = load_catalog().model(tag)
    model = build(choice)
    layer = json.loads(model.manifest)["layers"][0]
    return read_metadata(io.BytesIO(model.blobs[layer["digest"]])), choice.file_bytes


def _gpus(slug: str, count: int) -> list[Gpu]:
    spec = load_catalog().gpu(slug)
    return [Gpu(i, slug, spec.vram_mib, spec.bandwidth_gbs) for i in range(count)]


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner(json.loads(json.dumps(catalog_facts())))


def test_architecture_from_gguf_equals_catalog() -> None:
    info, _ = _info("qwen3-coder:30b-a3b-q4_K_M")
    assert architecture(info) == load_catalog().models["qwen3-coder-30b"].architecture()


@pytest.mark.parametrize("tag,slug,count,ctx,kv", [
    ("qwen2.5-coder:32b-instruct-q4_K_M", "rtx-4090", 1, 24576, "q8_0"),
    ("llama3.1:70b-instruct-q4_K_M", "rtx-4090", 2, 8192, "q8_0"),
    ("qwen2.5-coder:14b-instruct-q4_K_M", "rtx-5070-ti", 1, 16384, "f16"),
])
def test_full_fit_matches_the_plan(planner: Planner, tag: str, slug: str, count: int, ctx: int, kv: str) -> None:
    info, size = _info(tag)
    gpus = _gpus(slug, count)
    plan = make_plan(tag, [slug] * count, ctx, kv_cache=kv, flash_attention=True, parallel=1)
    assert plan.fits
    placed = planner.place(planner.request(info, size, gpus, ctx, kv, True, 1, False), gpus)
    assert placed.size == placed.size_vram  # "100% GPU" in ollama ps
    assert placed.layers_on_gpu == placed.layers_total
    expected = fit.fit(planner.request(info, size, gpus, ctx, kv, True, 1, False))
    assert placed.decode_tok_s == pytest.approx(expected.decode_tok_s)
    # usage.json (what the simulated nvidia-smi reports) carries the plan's per-GPU figures
    assert sorted(placed.per_gpu_mib.values(), reverse=True) == \
        pytest.approx(sorted((g.used_mib for g in plan.per_gpu), reverse=True), abs=1)
    assert placed.size_vram / MIB == pytest.approx(plan.ps_size_vram_mib, abs=count)
    assert placed.size / MIB == pytest.approx(plan.ps_size_mib, abs=count)


def test_model_too_big_shows_partial_offload_and_slower(planner: Planner) -> None:
    info, size = _info("qwen2.5-coder:32b-instruct-q4_K_M")
    small, big = _gpus("rtx-4070", 1), _gpus("rtx-4090", 1)
    partial = planner.place(planner.request(info, size, small, 8192, "f16", True, 1, False), small)
    full = planner.place(planner.request(info, size, big, 8192, "f16", True, 1, False), big)
    assert 0 < partial.size_vram < partial.size
    assert partial.layers_on_gpu < partial.layers_total
    assert partial.decode_tok_s < full.decode_tok_s / 2
    assert partial.per_gpu_mib[0] <= 12 * 1024
    plan = make_plan("qwen2.5-coder:32b-instruct-q4_K_M", ["rtx-4070"], 8192)
    assert (partial.size / MIB, partial.size_vram / MIB) == \
        (pytest.approx(plan.ps_size_mib, abs=1), pytest.approx(plan.ps_size_vram_mib, abs=1))


def test_partial_offload_switch_forces_a_split(planner: Planner) -> None:
    info, size = _info("qwen2.5-coder:14b-instruct-q4_K_M")
    gpus = _gpus("rtx-4090", 1)
    req = planner.request(info, size, gpus, 8192, "f16", True, 1, False)
    forced = planner.place(req, gpus, force_fraction=0.6)
    normal = planner.place(req, gpus)
    assert forced.size_vram < forced.size
    cpu_share = (forced.size - forced.size_vram) / forced.size
    assert 0.2 < cpu_share < 0.6
    assert forced.decode_tok_s < normal.decode_tok_s / 2


def test_cpu_only_host_has_no_vram(planner: Planner) -> None:
    info, size = _info("starcoder2:3b")
    placed = planner.place(planner.request(info, size, [], 4096, "f16", False, 1, False), [])
    assert placed.size_vram == 0 and placed.size > size and placed.per_gpu_mib == {}


def test_parallel_and_kv_type_change_memory(planner: Planner) -> None:
    info, size = _info("qwen2.5-coder:14b-instruct-q4_K_M")
    gpus = _gpus("rtx-4090", 1)
    one = planner.place(planner.request(info, size, gpus, 8192, "f16", True, 1, False), gpus)
    two = planner.place(planner.request(info, size, gpus, 8192, "f16", True, 2, False), gpus)
    q8 = planner.place(planner.request(info, size, gpus, 8192, "q8_0", True, 1, False), gpus)
    kv = 48 * 8192 * 8 * 128 * 2 * 2  # layers x ctx x kv_heads x head_dim x K,V x f16
    assert two.size_vram - one.size_vram == pytest.approx(kv, rel=0.05)
    assert q8.size_vram < one.size_vram


@pytest.mark.parametrize("slug,count,ctx", [("rtx-4070", 1, 4096), ("rtx-4090", 1, 32768),
                                            ("rtx-4090", 2, 262144), ("rtx-a6000", 1, 262144)])
def test_auto_context_follows_total_vram(slug: str, count: int, ctx: int) -> None:
    assert auto_context(_gpus(slug, count)) == ctx
