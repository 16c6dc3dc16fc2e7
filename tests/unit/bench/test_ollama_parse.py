"""Parsing Ollama replies (shared/reference/ollama.md): omitted-when-zero metrics, streams, /api/ps."""

import json

import pytest

from coderig_deploy.bench.ollama_api import (canonical_name, find_loaded, parse_generation,
                                             parse_ps, parse_stream)
from coderig_deploy.errors import BenchError

# The example reply in Ollama's docs/api.md.
DOC_EXAMPLE = {"model": "llama3.2", "response": "...", "done": True,
               "total_duration": 5043500667, "load_duration": 5025959,
               "prompt_eval_count": 26, "prompt_eval_duration": 325953000,
               "eval_count": 290, "eval_duration": 4709213000}


def test_doc_example_rates_match_ollama_run_verbose() -> None:
    gen = parse_generation(DOC_EXAMPLE)
    assert gen.decode_tok_s == pytest.approx(290 / 4.709213)
    assert gen.prefill_tok_s == pytest.approx(26 / 0.325953)
    assert gen.load_duration == 5025959 and gen.response == "..."


def test_metrics_omitted_when_zero_read_as_zero() -> None:
    # A fully cached prompt: Ollama omits prompt_eval_count/duration (zero) entirely.
    gen = parse_generation({"response": "x", "done": True, "done_reason": "stop",
                            "eval_count": 10, "eval_duration": 500_000_000})
    assert gen.prompt_eval_count == 0 and gen.prompt_eval_duration == 0
    assert gen.prefill_tok_s is None  # no division by zero, no fake figure
    assert gen.decode_tok_s == pytest.approx(20.0)
    assert gen.load_duration == 0 and gen.done_reason == "stop"


def test_preload_reply_without_any_metric() -> None:
    gen = parse_generation({"model": "m", "response": "", "done": True, "done_reason": "load"})
    assert gen.decode_tok_s is None and gen.eval_count == 0 and gen.done_reason == "load"


def test_chat_reply_content() -> None:
    gen = parse_generation({"message": {"role": "assistant", "content": "hi"}, "done": True,
                            "eval_count": 1, "eval_duration": 1})
    assert gen.response == "hi"


def test_error_object_raises() -> None:
    with pytest.raises(BenchError, match="model 'x' not found"):
        parse_generation({"error": "model 'x' not found"})


def _lines(*objs: dict) -> list[bytes]:
    return [json.dumps(o).encode() + b"\n" for o in objs]


def test_stream_ttft_is_first_text_chunk_and_text_is_joined() -> None:
    lines = _lines({"response": "", "done": False}, {"response": "Hel", "done": False},
                   {"response": "lo", "done": False},
                   {"response": "", "done": True, "done_reason": "length", "eval_count": 2,
                    "eval_duration": 100, "prompt_eval_count": 5, "prompt_eval_duration": 50})
    events = list(zip([10.1, 10.25, 10.3, 10.4], lines))
    gen = parse_stream(events, started=10.0)
    assert gen.response == "Hello"
    assert gen.ttft_s == pytest.approx(0.25)  # the empty first chunk does not count
    assert gen.done_reason == "length" and gen.eval_count == 2


def test_stream_ending_in_error_raises() -> None:
    events = list(zip([1.0, 2.0], _lines({"response": "a", "done": False},
                                         {"error": "llama runner process has terminated"})))
    with pytest.raises(BenchError, match="runner process has terminated"):
        parse_stream(events, 0.0)


def test_stream_cut_off_raises() -> None:
    with pytest.raises(BenchError, match="without a final object"):
        parse_stream(list(zip([1.0], _lines({"response": "a", "done": False}))), 0.0)


def test_ps_full_gpu_partial_and_cpu() -> None:
    gib = 2**30
    models = parse_ps({"models": [
        {"name": "a:1", "model": "a:1", "size": 20 * gib, "size_vram": 20 * gib,
         "context_length": 32768},
        {"name": "b:1", "model": "b:1", "size": 100, "size_vram": 52},
        {"name": "c:1", "model": "c:1", "size": 100}]})  # size_vram omitted = 0
    full, split, cpu = models
    assert full.processor == "100% GPU" and full.context_length == 32768
    assert split.processor == "48%/52% CPU/GPU" and split.context_length is None
    assert cpu.size_vram == 0 and cpu.processor == "100% CPU"
    assert split.gpu_percent == pytest.approx(52.0)


def test_ps_empty_and_missing_models_key() -> None:
    assert parse_ps({"models": []}) == [] and parse_ps({}) == []


@pytest.mark.parametrize("given,expected", [
    ("qwen2.5-coder", "qwen2.5-coder:latest"),
    ("registry.ollama.ai/library/qwen2.5-coder:32b", "qwen2.5-coder:32b"),
    ("coderig/qwen2.5-coder-32b:32k", "coderig/qwen2.5-coder-32b:32k"),
    ("host:5000/library/m", "host:5000/library/m:latest"),
])
def test_canonical_names(given: str, expected: str) -> None:
    assert canonical_name(given) == expected


def test_find_loaded_matches_name_or_model() -> None:
    models = parse_ps({"models": [{"name": "qwen2.5-coder:latest", "model": "qwen2.5-coder:latest",
                                   "size": 1, "size_vram": 1}]})
    assert find_loaded(models, "qwen2.5-coder") is models[0]
    assert find_loaded(models, "qwen2.5-coder:7b") is None
