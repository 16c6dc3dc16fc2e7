"""Measured calibration rows: written by probe, read back, and winning over the model
in `plan --calibration` only for exactly the measured setup."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from coderig_deploy.catalog import load_catalog
from coderig_deploy.cli import app
from coderig_deploy.errors import UnknownNameError, UserInputError
from coderig_deploy.planner import make_plan
from coderig_deploy.probe import measured, remote
from coderig_deploy.probe.measured import MeasuredRow

TAG = "qwen2.5-coder:1.5b"
KEY = "qwen2.5-coder-1.5b"


def _rows(ctx: int = 4096, size_vram: int = 1504) -> list[MeasuredRow]:
    common = dict(model=KEY, quant="Q4_K_M", gpus=("rtx-4090",), ctx=ctx, kv_cache="f16", flash_attn=True,
                  engine="Ollama 0.33.0, num_parallel 1", source="coderig-deploy probe on ws1, 2026-11-30")
    return [MeasuredRow(kind="speed", value=211.5, prefill_tok_s=9876.5, **common),
            MeasuredRow(kind="vram", value=2345, ps_size_mib=1504, ps_size_vram_mib=size_vram, **common)]


def test_rows_round_trip_through_the_tsv(tmp_path: Path) -> None:
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv(_rows()))
    assert measured.read_rows(path) == _rows()
    header = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")][0]
    assert header.split("\t") == list(measured.COLUMNS)


def test_a_matching_row_replaces_the_prediction_and_says_so() -> None:
    plan = make_plan(TAG, ["rtx-4090"], 4096)
    out = measured.apply(plan, _rows(), KEY)
    assert (out.decode_tok_s, out.vram_mib) == (211.5, 2345)
    assert plan.decode_tok_s != 211.5
    assert any("measured decode 211.5 tok/s" in n and "ws1" in n for n in out.notes)
    assert out.fits
    # Prefill is measured too, and time to first token follows both: prompt / prefill + one decode step.
    assert out.prefill_tok_s == 9876.5 and plan.prefill_tok_s != 9876.5
    assert out.time_to_first_token_s == pytest.approx(out.prompt_tokens / 9876.5 + 1 / 211.5, abs=1e-3)


@pytest.mark.parametrize("change", [dict(ctx=8192), dict(gpus=["rtx-4070"]), dict(kv_cache="q8_0"),
                                    dict(flash_attention=False)])
def test_another_setup_keeps_the_model_and_says_why(change: dict) -> None:
    args = {"model_tag": TAG, "gpu_slugs": ["rtx-4090"], "ctx": 4096, **change}
    if "gpus" in args:
        args["gpu_slugs"] = args.pop("gpus")
    plan = make_plan(**args)
    out = measured.apply(plan, _rows(), KEY)
    assert out.decode_tok_s == plan.decode_tok_s and out.vram_mib == plan.vram_mib
    assert any(n.startswith("no measured row") for n in out.notes)


def test_a_partial_offload_measured_means_it_does_not_fit() -> None:
    out = measured.apply(make_plan(TAG, ["rtx-4090"], 4096), _rows(size_vram=1000), KEY)
    assert not out.fits and out.gpu_fraction == round(1000 / 1504, 4)


def test_the_fit_data_file_is_refused_as_a_probe_file_in_one_line() -> None:
    # benchmarks/calibration.tsv is what the planner's constants are fitted on (its own columns,
    # with set=fit/held-out); --calibration takes probe's measured rows, and says so.
    with pytest.raises(UserInputError) as caught:
        measured.read_rows(Path("benchmarks/calibration.tsv"))
    assert "not a calibration file written by `coderig-deploy probe`" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_not_a_calibration_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n")
    with pytest.raises(UserInputError, match="not a calibration file"):
        measured.read_rows(path)


RESULT = {
    "ctx": 4096, "error": None,
    "ollama": {"version": "0.33.0", "kv_cache": "f16", "flash_attention": "auto", "num_parallel": 1},
    "gpu_baseline": {"gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "used_mib": 5}]},
    "bench": {"summary": {"decode_tok_s": {"median": 250.0}, "prefill_tok_s": {"median": 8000.0}},
              "ps": {"size": 1600 << 20, "size_vram": 1600 << 20},
              "gpu_memory": {"gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "used_mib": 2105}]}},
}


def test_rows_from_a_host_result_subtract_the_baseline_and_name_the_gpu_by_slug() -> None:
    choice = load_catalog().model(TAG)
    speed, vram = remote.rows(RESULT, choice, "ws1")
    assert (speed.kind, speed.value, speed.prefill_tok_s, speed.gpus) == ("speed", 250.0, 8000.0, ("rtx-4090",))
    assert (vram.kind, vram.value, vram.ps_size_mib, vram.flash_attn) == ("vram", 2100, 1600, True)
    assert remote.rows({**RESULT, "bench": {}}, choice, "ws1") == []


def test_resolve_refuses_unknown_models_and_contexts_out_of_range() -> None:
    with pytest.raises(UnknownNameError):
        remote.resolve("qwen9-coder:1b", 4096)
    with pytest.raises(UserInputError, match="--ctx 100: out of range .* 256 to 32768"):
        remote.resolve(TAG, 100)
    with pytest.raises(UserInputError, match="out of range"):
        remote.resolve(TAG, 65536)


def test_probe_pyz_carries_only_stdlib_modules() -> None:
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(remote.pyz_bytes())).namelist()
    assert "coderig_deploy/probe/host.py" in names and "coderig_deploy/sandbox/ollama_sim/gguf.py" in names
    assert "coderig_deploy/probe/remote.py" not in names and "coderig_deploy/sandbox/lab.py" not in names


@pytest.mark.parametrize("args", [["probe", "--model", TAG], ["probe", "--model", TAG, "--ctx", "100", "h1"],
                                  ["probe", "--model", "nope:1b", "h1"]])
def test_probe_bad_input_exits_2_with_one_line(args: list[str]) -> None:
    result = CliRunner().invoke(app, args, standalone_mode=False)
    assert isinstance(result.exception, UserInputError)
    assert result.exception.exit_code == 2 and "\n" not in str(result.exception)


def test_probe_pyz_runs_on_a_bare_python_and_reports_ollama_down(tmp_path: Path) -> None:
    import json
    import socket
    import subprocess

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pyz = tmp_path / "probe.pyz"
    pyz.write_bytes(remote.pyz_bytes())
    cfg = {**remote.config(load_catalog().model(TAG), 4096, 1, str(tmp_path)), "url": f"http://127.0.0.1:{port}"}
    proc = subprocess.run(["/usr/bin/python3", "-I", "-S", str(pyz), json.dumps(cfg)],
                          capture_output=True, text=True, timeout=60, check=False)
    result = json.loads(proc.stdout)
    assert proc.returncode == 1 and result["error"].startswith("Ollama is not up on this host")
    assert result["cleanup"]["file_left"] is False and list(tmp_path.iterdir()) == [pyz]


def test_disk_too_small_is_refused_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    from collections import namedtuple

    from coderig_deploy.probe import host

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10 << 30, 8 << 30, 2 << 30))
    # the file and its copy in a model store on the same disk: 2 x 1 GiB + 1 GiB slack > 2 GiB free
    with pytest.raises(host.ProbeFailed, match=r"not enough disk: .* 2.0 GiB free, the probe needs 3.0 GiB"):
        host.check_disk(tmp_path, tmp_path / "models", 1 << 30)
    assert host.check_disk(tmp_path, tmp_path / "models", 256 << 20)["needed_bytes"] == (512 << 20) + (1 << 30)
