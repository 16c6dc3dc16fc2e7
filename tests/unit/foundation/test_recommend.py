"""`recommend` on the seed's hardware, and when nothing fits."""

import json
import subprocess
import sys

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.profiles import load_profile_file
from coderig_deploy.recommend import recommend


def _top(gpus, purpose="chat"):
    return recommend(gpus, purpose).choices[0]


@pytest.mark.parametrize(("gpus", "tag"), [
    (["rtx-4070"], "qwen2.5-coder:14b-instruct-q4_K_M"),  # seed: budget build
    (["rtx-4090"], "qwen2.5-coder:32b-instruct-q4_K_M"),  # seed: default recommendation
    (["rtx-4090", "rtx-4090"], "llama3.1:70b-instruct-q4_K_M"),  # seed: power user
])
def test_the_seeds_pick_comes_out_on_top(gpus, tag):
    assert _top(gpus).tag == tag


@pytest.mark.parametrize("gpu", ["rtx-4060-ti-16gb", "rtx-5070-ti", "rtx-4090-laptop", "rtx-5080-laptop"])
def test_16_gb_gets_14b_with_a_long_context(gpu):
    top = _top([gpu])
    assert top.tag.startswith("qwen2.5-coder:14b") and top.ctx >= 32768


def test_a_laptop_gpus_speeds_are_said_to_be_at_the_top_of_its_power_range():
    [note] = recommend(["rtx-4090-laptop"]).notes
    assert note.startswith("rtx-4090-laptop: speeds at 175 W, the top of the 80-175 W")
    assert recommend(["rtx-4090"]).notes == []
    # Turing: the rows show the model overestimates its speeds, and recommend says so as plan does.
    [turing] = recommend(["t4"]).notes
    assert turing.startswith("turing GPU: no fit row measures this architecture")


def test_recommend_at_a_laptops_power_limit_ranks_the_same_choices_with_slower_prompts(tmp_path):
    # A power limit moves prompt speed, not memory: the same choices in the same order, each prompt slower, and the
    # note says what the speeds are for instead of the top-of-range one.
    default, capped = recommend(["rtx-4080-laptop"]), recommend(["rtx-4080-laptop"], power_limit_w=80)
    assert capped.power_limit_w == 80 and default.power_limit_w is None
    assert [(c.tag, c.ctx, c.kv_cache) for c in capped.choices] == [(c.tag, c.ctx, c.kv_cache) for c in default.choices]
    assert all(c.prefill_tok_s < d.prefill_tok_s and c.ttft_4k_s > d.ttft_4k_s
               for c, d in zip(capped.choices, default.choices))
    assert capped.notes[0].startswith("power limit 80 W") and not any("the top of the" in n for n in capped.notes)
    written = tmp_path / "laptop.yaml"
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-4080-laptop",
                          "--power-limit", "80", "--json", "--write-profile", str(written)], capture_output=True,
                         text=True)
    assert cli.returncode == 0 and json.loads(cli.stdout)["power_limit_w"] == 80
    assert "1x rtx-4080-laptop at 80 W (chat)" in load_profile_file(written).description
    rows = tmp_path / "rows.tsv"
    rows.write_text("")
    for args, says in ((["--gpu", "rtx-3090", "--power-limit", "250"], "for laptop GPUs"),
                       (["--gpu", "rtx-4080-laptop", "--power-limit", "0"], "--power-limit"),
                       (["--gpu", "rtx-4080-laptop", "--power-limit", "80", "--calibration", str(rows)],
                        "does not record the power limit")):
        bad = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", *args], capture_output=True,
                             text=True)
        assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr


def test_autocomplete_prefers_the_fim_model():
    assert _top(["rtx-4070"], "autocomplete").tag.startswith("starcoder2:3b")


def test_choices_are_in_the_stated_order_and_fit():
    r = recommend(["rtx-4090"], "chat", limit=20)
    assert [c.rank for c in r.choices] == list(range(1, len(r.choices) + 1))
    assert all(c.headroom_mib >= 0 and c.decode_tok_s > 0 and c.prefill_tok_s > 0 for c in r.choices)
    same_model = [c for c in r.choices if c.tag.startswith("qwen2.5-coder:32b")]
    bits = [{"Q8_0": 8, "Q6_K": 6, "Q5_K_M": 5, "Q4_K_M": 4}[c.quant] for c in same_model]
    assert bits == sorted(bits, reverse=True)


def test_nothing_fits_says_why_and_exits_1():
    r = recommend(["rtx-4060"], "chat", ram_gb=2)
    assert not r.choices and r.not_fitting[0].startswith("2 GB of system RAM is no more than the 4096 MiB the OS")
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-4060", "--ram-gb", "2"],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "nothing fits" in cli.stdout and "rtx-4060" in cli.stdout and "Traceback" not in cli.stderr


def test_unknown_gpu_is_bad_input():
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-9999"],
                         capture_output=True, text=True)
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1


def test_write_profile_passes_validation(tmp_path):
    out = tmp_path / "mine.yaml"
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-4090", "--json",
                          "--write-profile", str(out)], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    top = json.loads(cli.stdout)["choices"][0]
    profile = load_profile_file(out)
    assert profile.model.tag == top["tag"] and profile.model.num_ctx == top["ctx"] and profile.plan.fits
    # The driver branch is the architecture's default from the branch table, Secure Boot keeps its
    # safe default (refuse), and Ollama is the release the roles pin.
    assert (profile.driver.branch, profile.driver.secure_boot) == (580, "refuse")
    assert profile.ollama.version == "0.33.3"


def test_write_profile_to_a_name_no_profile_may_have_writes_nothing(tmp_path):
    """The file's name is the profile's: `my profile.yaml` could never be loaded, so it is not written."""
    out = tmp_path / "my profile.yaml"
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-4090",
                          "--write-profile", str(out)], capture_output=True, text=True)
    assert cli.returncode == 2
    assert f"--write-profile {out}: name: 'my profile' is not a valid profile name" in cli.stderr
    assert "Traceback" not in cli.stderr and not out.exists()


def test_table_fits_80_columns():
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-4090"],
                         capture_output=True, text=True)
    rows = cli.stdout.splitlines()[2:]
    assert rows and max(len(line.rstrip()) for line in rows) <= 80


def test_the_seeds_context_on_a_4090_fits_and_nothing_longer_is_offered():
    # The seed puts 32B Q4_K_M on a 4090 at 32K: it fits with a q8_0 cache (the compute buffer is the larger of a
    # layer's peak and the logits', not their sum), and 32K is the model's trained context, so no longer one is tried.
    r = recommend(["rtx-4090"], "chat")
    assert (r.choices[0].ctx, r.choices[0].kv_cache) == (32768, "q8_0") and r.choices[0].headroom_mib >= 0
    assert r.not_fitting == []


def test_the_top_choice_says_why_its_context_is_not_longer():
    # A 12 GB RTX 4070 holds 14B Q4_K_M at 16K; the next step, 32K, is short by hundreds of MiB, and the output says so.
    r = recommend(["rtx-4070"], "chat")
    assert r.choices[0].tag.startswith("qwen2.5-coder:14b") and r.choices[0].ctx == 16384
    assert "32768" in r.not_fitting[0] and "MiB short" in r.not_fitting[0]


def _row(choice, **over):
    from coderig_deploy.catalog import load_catalog
    from coderig_deploy.probe.measured import MeasuredRow

    fields = dict(kind="speed", model=load_catalog().model(choice.tag).model.key, quant=choice.quant,
                  gpus=("rtx-4090",), ctx=choice.ctx, kv_cache=choice.kv_cache, flash_attn=True,
                  engine="Ollama 0.33.3", value=12.5, prefill_tok_s=900.0, source="probe on ws1")
    return MeasuredRow(**{**fields, **over})


def test_a_measured_row_replaces_the_prediction_of_its_setup():
    top = _top(["rtx-4090"])
    # measured where recommend predicts: decode at the planner's depth, prefill over a 4096-token prompt
    depth = int(load_catalog().runtime["decode_depth"])
    again = recommend(["rtx-4090"], rows=[_row(top, depth=depth, prompt_tokens=4096)]).choices[0]
    assert (again.tag, again.ctx, again.measured) == (top.tag, top.ctx, True) and not top.measured
    assert again.decode_tok_s == pytest.approx(12.5, abs=0.01)
    assert again.ttft_4k_s == pytest.approx(4096 / 900 + 1 / 12.5, abs=2e-3)


def test_a_measured_partial_offload_drops_that_setting():
    top = _top(["rtx-4090"])
    spilled = _row(top, kind="vram", value=23000, ps_size_mib=21000, ps_size_vram_mib=20000)
    again = recommend(["rtx-4090"], rows=[spilled]).choices[0]
    assert (again.tag, again.ctx, again.kv_cache) != (top.tag, top.ctx, top.kv_cache)


def test_cli_takes_a_probe_file_and_marks_measured_figures(tmp_path):
    from coderig_deploy.probe.measured import to_tsv

    top = _top(["rtx-4090"])
    path = tmp_path / "calibration.tsv"
    path.write_text(to_tsv([_row(top)]))
    cli = subprocess.run([sys.executable, "-m", "coderig_deploy", "recommend", "--gpu", "rtx-4090",
                          "--calibration", str(path)], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    first = next(line for line in cli.stdout.splitlines() if line.lstrip().startswith("1 "))
    assert "12*" in first and "measured on a host" in cli.stdout


def test_the_stated_ranking_names_the_size_classes_it_ranks_by():
    """deepseek-coder 33B ranks beside qwen2.5-coder 32B, not above it: one size class, so the line must say
    classes, with their bounds, not "bigger model"."""
    from coderig_deploy.recommend import RANKING, SIZE_CLASS_TOPS_B, _size_class
    assert _size_class(33.3) == _size_class(32.76) != _size_class(14.8)
    assert "size class (<=" + ", ".join(f"{t:g}" for t in SIZE_CLASS_TOPS_B[:-1]) + "B" in RANKING
