"""The plan/profiles commands as a user runs them: output, JSON contract, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BAD = Path(__file__).parent / "bad_profiles"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True, timeout=60)


def test_plan_json_contract():
    r = run("plan", "--model", "llama3.1:70b-instruct-q4_K_M", "--gpu", "rtx-4090", "--gpu", "rtx-4090",
            "--ctx", "16384", "--kv-cache", "q8_0", "--flash-attention", "on", "--parallel", "1", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("fits", "vram_mib", "per_gpu", "weights_mib", "kv_cache_mib", "compute_mib", "overhead_mib",
                "gpu_fraction", "decode_tok_s"):
        assert key in data
    assert data["fits"] is True and data["gpu_fraction"] == 1.0
    assert [g["gpu"] for g in data["per_gpu"]] == ["rtx-4090", "rtx-4090"]
    assert sum(g["used_mib"] for g in data["per_gpu"]) == data["vram_mib"]
    assert all(set(g) >= {"gpu", "used_mib", "total_mib"} for g in data["per_gpu"])
    # 80 layers x 16384 x 8 x 128 x 2 x 34/32 bytes = 2720 MiB
    assert data["kv_cache_mib"] == 2720


def test_plan_that_does_not_fit_exits_1_and_says_so():
    r = run("plan", "--model", "llama3.1:70b", "--gpu", "rtx-4090", "--ctx", "8192")
    assert r.returncode == 1
    assert "does not fit" in r.stdout and "partial offload" in r.stdout


def test_plan_profile_with_gpu_override():
    r = run("plan", "--profile", "budget-4070", "--gpu", "rtx-3060-12gb", "--json")
    data = json.loads(r.stdout)
    assert data["gpus"] == ["rtx-3060-12gb"] and data["ctx"] == 16384 and data["kv_cache"] == "q8_0"


def test_readme_main_command():
    r = run("plan", "--profile", "dual-4090")
    assert r.returncode == 0, r.stderr
    assert "fits" in r.stdout and "rtx-4090 + rtx-4090" in r.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("plan", "--profile", "dual-4900"), "unknown profile 'dual-4900'. Did you mean dual-4090"),
        (("plan", "--model", "qwen2.5-coder:32b", "--gpu", "rtx4090", "--ctx", "4096"), "Did you mean rtx-4090"),
        (("plan", "--model", "qwen2.5-codr:32b", "--gpu", "rtx-4090", "--ctx", "4096"), "Did you mean qwen2.5-coder"),
        (("plan", "--model", "qwen2.5-coder:32b-instruct-q3_k", "--gpu", "rtx-4090", "--ctx", "4096"), "unknown quantization"),
        (("plan", "--model", "qwen2.5-coder:32b", "--gpu", "rtx-4090"), "plan needs --ctx"),
        (("plan", "--model", "qwen2.5-coder:32b", "--gpu", "rtx-4090", "--ctx", "4096", "--kv-cache", "q5"), "q5"),
        (("profiles", "show", "budget-4700"), "Did you mean budget-4070"),
        (("profiles", "validate", str(BAD / "unknown-key.yaml")), "ollama.kv_cache: unknown key"),
        (("profiles", "validate", str(BAD / "malformed.yaml")), "malformed.yaml:4: invalid YAML"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(args, message):
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_profiles_list_json():
    r = run("profiles", "list", "--json")
    rows = json.loads(r.stdout)
    names = {row["name"] for row in rows}
    assert {"budget-4070", "midrange-4090", "dual-4090"} <= names
    dual = next(row for row in rows if row["name"] == "dual-4090")
    assert len(dual["vram_per_gpu_mib"]) == 2 and dual["fits"]


def test_profiles_show_and_validate_shipped(tmp_path):
    r = run("profiles", "show", "midrange-4090", "--json")
    data = json.loads(r.stdout)
    assert data["ollama_env"]["OLLAMA_KV_CACHE_TYPE"] == "q8_0" and data["plan"]["fits"]
    shipped = sorted(Path(__file__).parents[3].joinpath("profiles").glob("*.yaml"))
    r = run("profiles", "validate", *map(str, shipped))
    assert r.returncode == 0, r.stdout


def test_every_command_that_connects_takes_the_key_as_key() -> None:
    """apply, detect and editor-config named it --key, verify, probe and validate --identity: both names
    work on the latter, so one muscle memory serves every command."""
    from typer.testing import CliRunner

    from coderig_deploy.cli import app
    for command in (["apply"], ["detect"], ["editor-config"], ["verify"], ["probe"], ["validate"]):
        text = CliRunner().invoke(app, [*command, "--help"], terminal_width=200).stdout
        assert "--key" in text, command
    for command in (["verify"], ["probe"], ["validate"]):
        assert "--identity" in CliRunner().invoke(app, [*command, "--help"], terminal_width=200).stdout
