from pathlib import Path

import pytest

from coderig_deploy.sandbox.ollama_sim import envconfig
from coderig_deploy.sandbox.ollama_sim.names import ModelName, NameError_, parse, parse_duration


@pytest.mark.parametrize("raw,expected", [
    ("qwen2.5-coder:32b", ModelName("registry.ollama.ai", "library", "qwen2.5-coder", "32b")),
    ("starcoder2", ModelName("registry.ollama.ai", "library", "starcoder2", "latest")),
    ("coderig/qwen2.5-coder-32b:24k", ModelName("registry.ollama.ai", "coderig", "qwen2.5-coder-32b", "24k")),
    ("10.79.0.1:5000/library/qwen2.5-coder:14b-instruct-q4_K_M",
     ModelName("10.79.0.1:5000", "library", "qwen2.5-coder", "14b-instruct-q4_K_M")),
])
def test_names_fill_ollama_defaults(raw: str, expected: ModelName) -> None:
    assert parse(raw) == expected


def test_display_is_shortest_form() -> None:
    assert parse("registry.ollama.ai/library/llama3.1:8b").display() == "llama3.1:8b"
    assert parse("coderig/x:1").display() == "coderig/x:1"
    assert parse("h:5000/library/x:1").display() == "h:5000/library/x:1"
    assert parse("h:5000/library/x:1").manifest_parts() == ("h:5000", "library", "x", "1")


@pytest.mark.parametrize("bad", ["", "a/b/c/d", "bad name", "x:ta g"])
def test_invalid_names_raise(bad: str) -> None:
    with pytest.raises(NameError_):
        parse(bad)


@pytest.mark.parametrize("raw,seconds", [
    ("5m", 300), ("1h30m", 5400), ("10s", 10), ("300ms", 0.3), ("-1", -1), ("-1m", -1), ("0", 0),
    (0, 0), (42, 42), (-5, -1), ("", 7), (None, 7),
])
def test_keep_alive_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw, 7) == pytest.approx(seconds)


def test_bad_duration_raises() -> None:
    with pytest.raises(ValueError):
        parse_duration("5 minutes", 1)


@pytest.mark.parametrize("raw,expected", [
    (None, ("127.0.0.1", 11434)), ("0.0.0.0", ("0.0.0.0", 11434)), (":11434", ("", 11434)),
    ("10.0.0.5:8080", ("10.0.0.5", 8080)), ("http://10.0.0.5", ("10.0.0.5", 80)),
    ("https://box", ("box", 443)), ("[::1]:9000", ("::1", 9000)),
])
def test_ollama_host_parsing_as_envconfig(raw: str | None, expected: tuple[str, int]) -> None:
    assert envconfig.parse_host(raw) == expected


def test_environment_is_read_into_config() -> None:
    config = envconfig.from_env({
        "OLLAMA_HOST": "127.0.0.1:12000", "OLLAMA_MODELS": "/srv/models", "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_MAX_LOADED_MODELS": "2", "OLLAMA_NUM_PARALLEL": "4", "OLLAMA_CONTEXT_LENGTH": "24576",
        "OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "1", "CODERIG_SIM_GPUS": "/tmp/g.json",
    })
    assert (config.host, config.port, config.models) == ("127.0.0.1", 12000, Path("/srv/models"))
    assert (config.keep_alive, config.max_loaded_models, config.num_parallel) == (-1, 2, 4)
    assert (config.context_length, config.kv_cache_type, config.flash_attention) == (24576, "q8_0", True)
    assert config.gpus_file == Path("/tmp/g.json")


def test_environment_defaults() -> None:
    config = envconfig.from_env({"HOME": "/home/u"})
    assert config.models == Path("/home/u/.ollama/models")
    assert (config.keep_alive, config.num_parallel, config.context_length) == (300, 1, 0)
    assert config.flash_attention is None and config.kv_cache_type == "f16"
    assert config.faults_file == Path("/etc/coderig-sim/ollama-faults.json")


def test_bad_integer_env_is_an_error() -> None:
    with pytest.raises(ValueError, match="OLLAMA_NUM_PARALLEL"):
        envconfig.from_env({"OLLAMA_NUM_PARALLEL": "many"})
