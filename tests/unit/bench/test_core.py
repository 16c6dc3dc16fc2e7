"""The benchmark flow against a canned server: what it asks, in what order, what it reports."""

import subprocess
import sys
import json
from pathlib import Path

import pytest

from coderig_deploy.bench.core import BenchConfig, Benchmark
from coderig_deploy.bench.pyz import build_pyz
from coderig_deploy.errors import BenchError

NO_GPU = {"source": "test", "gpus": [], "error": None}


def _bench(stub, **kw) -> Benchmark:
    cfg = BenchConfig(model="m:1", url=stub.url, code_tasks=("is_palindrome",), **kw)
    return Benchmark(cfg, gpu_reader=lambda _p: NO_GPU)


def test_flow_preload_warmup_timed_runs_then_ps(stub_ollama) -> None:
    result = _bench(stub_ollama, runs=3).run()
    gens = [b for p, b in stub_ollama.requests if p == "/api/generate"]
    assert "prompt" not in gens[0]  # preload: only the model
    assert gens[1]["stream"] is False  # untimed warm-up
    timed = gens[2:5]
    assert [g["stream"] for g in timed] == [True] * 3
    assert all(g["options"] == {"temperature": 0, "seed": 42, "num_predict": 128} for g in timed)
    assert len({g["prompt"] for g in timed}) == 3  # per-run tag defeats the prompt cache
    assert len(result["runs"]) == 3  # the warm-up is not among the timed runs
    assert result["load"] == {"already_loaded": False, "load_s": 2.5,
                              "wall_s": result["load"]["wall_s"]}
    assert result["summary"]["decode_tok_s"]["mean"] == pytest.approx(32.0)
    assert result["summary"]["prefill_tok_s"]["median"] == pytest.approx(2000.0)
    assert result["runs"][0]["ttft_s"] is not None
    assert result["ps"]["processor"] == "100% GPU" and result["ps"]["context_length"] == 32768
    assert result["code_check"][0]["status"] == "passed"
    assert result["warnings"] == []


def test_server_context_is_not_overridden_unless_asked(stub_ollama) -> None:
    _bench(stub_ollama, runs=1, code_check=False).run()
    assert all("num_ctx" not in (b.get("options") or {}) for _, b in stub_ollama.requests)


def test_short_generation_is_warned(stub_ollama) -> None:
    stub_ollama.eval_count = 40
    result = _bench(stub_ollama, runs=2, code_check=False).run()
    assert len(result["warnings"]) == 2 and "generated 40 of 128" in result["warnings"][0]


def test_missing_model_raises_with_partial_result(stub_ollama) -> None:
    bench = Benchmark(BenchConfig(model="missing:1", url=stub_ollama.url))
    with pytest.raises(BenchError, match="HTTP 404: model 'missing:1' not found"):
        bench.run()
    assert bench.result["ollama_version"] == "0.33.0" and bench.result["timing"] is not None


def test_zipapp_runs_with_plain_system_python(stub_ollama, tmp_path: Path) -> None:
    pyz = build_pyz(tmp_path / "coderig-bench.pyz")
    # -I -S: no site-packages at all, as on a bare host.
    proc = subprocess.run(["/usr/bin/python3", "-I", "-S", str(pyz), "--model", "m:1",
                           "--url", stub_ollama.url, "--runs", "2", "--code-task", "is_palindrome",
                           "--expect-decode", "40", "--tolerance", "5", "--expect-ctx", "32768"],
                          capture_output=True, text=True, timeout=60)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1  # 32 tok/s < 40 - 5
    assert result["verdict"]["status"] == "fail"
    assert any(r.startswith("decode_speed: too slow") for r in result["verdict"]["reasons"])


def test_zipapp_is_deterministic(tmp_path: Path) -> None:
    a = build_pyz(tmp_path / "a.pyz").read_bytes()
    b = build_pyz(tmp_path / "b.pyz").read_bytes()
    assert a == b
