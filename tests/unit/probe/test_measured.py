"""Measured calibration rows: written by probe, read back, and winning over the model
in `plan --calibration` only for exactly the measured setup."""

from __future__ import annotations

import json
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


def _rows(ctx: int = 4096, size_vram: int = 1504, depth: int | None = 556,
          prompt: int | None = 492) -> list[MeasuredRow]:
    common = dict(model=KEY, quant="Q4_K_M", gpus=("rtx-4090",), ctx=ctx, kv_cache="f16", flash_attn=True,
                  engine="Ollama 0.33.0, num_parallel 1", source="coderig-deploy probe on ws1, 2026-11-30")
    return [MeasuredRow(kind="speed", value=211.5, prefill_tok_s=9876.5, depth=depth, prompt_tokens=prompt,
                        **common),
            MeasuredRow(kind="vram", value=2345, ps_size_mib=1504, ps_size_vram_mib=size_vram, **common)]


def _replan(**setup: object) -> measured.Replan:
    """The same setup for another prompt length and depth, as `plan` and `recommend` pass it."""
    args = {"model_tag": TAG, "gpu_slugs": ["rtx-4090"], "ctx": 4096, **setup}
    return lambda prompt, depth: make_plan(**args, prompt_tokens=prompt, depth=depth)  # type: ignore[arg-type]


def test_rows_round_trip_through_the_tsv(tmp_path: Path) -> None:
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv(_rows()))
    assert measured.read_rows(path) == _rows()
    header = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")][0]
    assert header.split("\t") == list(measured.COLUMNS)


def test_a_row_measured_at_the_plans_own_point_replaces_its_figures_and_says_so() -> None:
    plan = make_plan(TAG, ["rtx-4090"], 4096, prompt_tokens=492, depth=556)
    out = measured.apply(plan, _rows(), KEY, _replan())
    assert out.decode_tok_s == pytest.approx(211.5, abs=0.01) and out.vram_mib == 2345
    assert plan.decode_tok_s != pytest.approx(211.5, rel=0.01)
    assert any("measured decode 211.5 tok/s at depth 556" in n and "ws1" in n for n in out.notes)
    assert out.fits
    # Time to first token follows both measured rates: the prompt over the measured prefill, plus one decode step.
    assert out.time_to_first_token_s == pytest.approx(492 / 9876.5 + 1 / 211.5, abs=2e-3)


def test_a_row_is_carried_to_the_plans_prompt_and_depth_by_the_models_shape() -> None:
    # The smoke benchmark measures a few hundred tokens; the plan asks for a 4K prompt and decode 3K deep.
    # Each measured rate is scaled by measured / model where it was measured, so the model's slope with prompt
    # length and depth is kept and its level set by the measurement.
    plan = make_plan(TAG, ["rtx-4090"], 4096, prompt_tokens=4096, depth=3072)
    at = make_plan(TAG, ["rtx-4090"], 4096, prompt_tokens=492, depth=556)
    out = measured.apply(plan, _rows(), KEY, _replan())
    decode_ratio = 211.5 / at.decode_tok_s
    prefill_ratio = 9876.5 / (492 / (at.time_to_first_token_s - 1 / at.decode_tok_s))
    assert out.decode_tok_s == pytest.approx(plan.decode_tok_s * decode_ratio, rel=1e-3)
    assert out.decode_tok_s < 211.5  # deeper than measured: slower, as the model says
    assert out.prefill_tok_s == pytest.approx(plan.prefill_tok_s * prefill_ratio, rel=1e-3)
    model_prefill_s = plan.time_to_first_token_s - 1 / plan.decode_tok_s
    assert out.time_to_first_token_s == pytest.approx(
        model_prefill_s / prefill_ratio + 1 / out.decode_tok_s, abs=2e-3)
    # The short prompt's rate taken for the 4K prompt as it is would put the first token early: attention over
    # the longer prompt's cache costs more per token.
    assert out.time_to_first_token_s > 4096 / 9876.5 + 1 / 211.5 + 0.01
    assert any("over a 492-token prompt" in n and "first token of the 4096-token prompt" in n for n in out.notes)


def test_a_row_without_its_point_is_taken_at_the_plans_and_says_so(tmp_path: Path) -> None:
    # A calibration.tsv written before rows recorded their depth and prompt length: "tok/s (pp 9876.5)".
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv(_rows(depth=None, prompt=None)))
    assert "\ttok/s (pp 9876.5)\t" in path.read_text()
    rows = measured.read_rows(path)
    assert (rows[0].depth, rows[0].prompt_tokens, rows[0].prefill_tok_s) == (None, None, 9876.5)
    plan = make_plan(TAG, ["rtx-4090"], 4096)
    out = measured.apply(plan, rows, KEY, _replan())
    assert out.decode_tok_s == pytest.approx(211.5, abs=0.01)
    assert out.time_to_first_token_s == pytest.approx(plan.prompt_tokens / 9876.5 + 1 / 211.5, abs=2e-3)
    assert any("does not record its depth or prompt length" in n for n in out.notes)


# (plan options, the same setup for make_plan)
CARRIED = [
    ([], {}),
    (["--prompt-tokens", "16384", "--depth", "16384"], {}),
    (["--prompt-tokens", "0"], {}),
    (["--gpu", "rtx-3090", "--spread", "--depth", "8192"], {"gpu_slugs": ["rtx-4090", "rtx-3090"], "spread": True}),
    # partly in system RAM
    (["--ctx", "32768", "--ram-bandwidth", "40", "--prompt-tokens", "8192"],
     {"gpu_slugs": ["rtx-4060"], "ctx": 32768, "ram_bandwidth_gbs": 40.0}),
]


@pytest.mark.parametrize(("options", "setup"), CARRIED)
def test_a_row_that_agrees_with_the_model_leaves_every_plan_as_predicted(
        tmp_path: Path, options: list[str], setup: dict) -> None:
    # A host that measured exactly what the model predicts at the benchmark's point: whatever prompt, depth,
    # split or RAM the plan asks about, carrying the row there must give the model's own figures back.
    setup = {"model_tag": "qwen2.5-coder:14b", "gpu_slugs": ["rtx-4090"], "ctx": 16384, **setup}
    at = make_plan(**setup, prompt_tokens=492, depth=556)
    row = MeasuredRow(kind="speed", model="qwen2.5-coder-14b", quant="Q4_K_M", gpus=tuple(setup["gpu_slugs"]),
                      ctx=setup["ctx"], kv_cache="f16", flash_attn=True, engine="Ollama 0.33.0, num_parallel 1",
                      value=at.decode_tok_s, prefill_tok_s=492 / (at.time_to_first_token_s - 1 / at.decode_tok_s),
                      depth=556, prompt_tokens=492, source="coderig-deploy probe on ws1, 2026-12-03")
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv([row]))
    args = ["plan", "--model", "qwen2.5-coder:14b", "--ctx", "16384", "--json",
            *[a for slug in setup["gpu_slugs"][:1] for a in ("--gpu", slug)], *options]
    runner = CliRunner()
    model = json.loads(runner.invoke(app, args).stdout)
    carried = json.loads(runner.invoke(app, [*args, "--calibration", str(path)]).stdout)
    assert any(n.startswith("measured decode") for n in carried["notes"])
    assert model["gpus"] == setup["gpu_slugs"] and model["fits"] == ("--ram-bandwidth" not in options)
    for field in ("decode_tok_s", "prefill_tok_s", "time_to_first_token_s"):
        assert carried[field] == pytest.approx(model[field], rel=2e-3, abs=2e-3), field


@pytest.mark.parametrize("change", [dict(ctx=8192), dict(gpus=["rtx-4070"]), dict(kv_cache="q8_0"),
                                    dict(flash_attention=False)])
def test_another_setup_keeps_the_model_and_says_why(change: dict) -> None:
    args = {"model_tag": TAG, "gpu_slugs": ["rtx-4090"], "ctx": 4096, **change}
    if "gpus" in args:
        args["gpu_slugs"] = args.pop("gpus")
    plan = make_plan(**args)
    out = measured.apply(plan, _rows(), KEY, _replan())
    assert out.decode_tok_s == plan.decode_tok_s and out.vram_mib == plan.vram_mib
    assert any(n.startswith("no measured row") for n in out.notes)


def test_a_partial_offload_measured_means_it_does_not_fit() -> None:
    out = measured.apply(make_plan(TAG, ["rtx-4090"], 4096), _rows(size_vram=1000), KEY, _replan())
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


def _edit_row(path: Path, kind: str, column: str, value: str) -> None:
    lines = path.read_text().split("\n")
    at = measured.COLUMNS.index(column)
    for n, line in enumerate(lines):
        fields = line.split("\t")
        if fields[0] == kind:
            fields[at] = value
            lines[n] = "\t".join(fields)
    path.write_text("\n".join(lines))


@pytest.mark.parametrize(("kind", "column", "value", "message"), [
    ("speed", "value", "0", "value: Input should be greater than 0"),
    ("speed", "value", "-5", "value: Input should be greater than 0"),
    ("speed", "value", "nan", "value: Input should be a finite number"),
    ("speed", "value", "inf", "value: Input should be a finite number"),
    ("vram", "value", "0", "value: Input should be greater than 0"),
    ("vram", "value", "1e300", "MiB is more than rtx-4090 hold"),
    ("vram", "value", "24565", "24565 MiB is more than rtx-4090 hold"),
    ("speed", "unit", "tok/s at depth 99999999, prompt 492 tokens (pp 9876.5)", "depth 99999999 is beyond the "
     "context (4096)"),
    ("speed", "unit", "tok/s at depth 556, prompt 5000 tokens (pp 9876.5)", "prompt_tokens 5000 is beyond"),
    ("speed", "unit", "tok/s at depth 556, prompt 492 tokens (pp 0)", "prefill_tok_s: Input should be greater"),
    ("vram", "unit", "MiB (nvidia-smi); ollama ps size 1504 MiB, size_vram 1600 MiB", "size_vram 1600 MiB is "
     "more than its size 1504 MiB"),
])
def test_a_row_no_probe_could_write_is_refused_in_one_line(
        tmp_path: Path, kind: str, column: str, value: str, message: str) -> None:
    """A shared calibration file is input: a value that no measurement gives (zero, negative, not a number,
    more memory than the card has, a depth past the context) is an error naming the line, never a plan
    computed from it (0 tok/s divided into seconds to the first token)."""
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv(_rows()))
    _edit_row(path, kind, column, value)
    with pytest.raises(UserInputError) as caught:
        measured.read_rows(path)
    line = 5 if kind == "vram" else 4
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value) and str(caught.value).endswith("(not a measurement)")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("command", [["plan", "--model", TAG, "--gpu", "rtx-4090", "--ctx", "4096"],
                                     ["recommend", "--gpu", "rtx-4090"]])
def test_plan_and_recommend_refuse_such_a_file(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "calibration.tsv"
    path.write_text(measured.to_tsv(_rows()))
    _edit_row(path, "speed", "value", "0")
    result = CliRunner().invoke(app, [*command, "--calibration", str(path)])
    assert isinstance(result.exception, UserInputError), result.output
    assert "value: Input should be greater than 0" in str(result.exception)


RESULT = {
    "ctx": 4096, "error": None,
    "ollama": {"version": "0.33.0", "kv_cache": "f16", "flash_attention": "auto", "num_parallel": 1},
    "gpu_baseline": {"gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "used_mib": 5}]},
    "bench": {"summary": {"decode_tok_s": {"median": 250.0}, "prefill_tok_s": {"median": 8000.0},
                          "prompt_eval_count": {"median": 492.0}, "eval_count": {"median": 128.0}},
              "ps": {"size": 1600 << 20, "size_vram": 1600 << 20},
              "gpu_memory": {"gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "used_mib": 2105}]}},
}


def test_rows_from_a_host_result_subtract_the_baseline_and_name_the_gpu_by_slug() -> None:
    choice = load_catalog().model(TAG)
    speed, vram = remote.rows(RESULT, choice, "ws1")
    assert (speed.kind, speed.value, speed.prefill_tok_s, speed.gpus) == ("speed", 250.0, 8000.0, ("rtx-4090",))
    # where it was measured: the prompt's length, and decode's average depth (prompt + half of 128 generated)
    assert (speed.prompt_tokens, speed.depth) == (492, 556)
    assert speed.unit() == "tok/s at depth 556, prompt 492 tokens (pp 8000.0)"
    assert (vram.kind, vram.value, vram.ps_size_mib, vram.flash_attn) == ("vram", 2100, 1600, True)
    assert remote.rows({**RESULT, "bench": {}}, choice, "ws1") == []


def test_rows_from_a_host_stay_inside_what_a_row_may_hold() -> None:
    """A 512-token context: 492 prompt tokens and 128 generated would average 556 deep, but past the context
    Ollama shifts the cache: the row says 512. Memory that fell while the model loaded (another program
    freed some) is no measurement: no vram row rather than a negative one."""
    choice = load_catalog().model(TAG)
    speed, _vram = remote.rows({**RESULT, "ctx": 512}, choice, "ws1")
    assert (speed.ctx, speed.depth, speed.prompt_tokens) == (512, 512, 492)
    freed = json.loads(json.dumps(RESULT))
    freed["gpu_baseline"]["gpus"][0]["used_mib"] = 3000
    assert [r.kind for r in remote.rows(freed, choice, "ws1")] == ["speed"]


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
