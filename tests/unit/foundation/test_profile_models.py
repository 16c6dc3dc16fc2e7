"""Profiles with several models and roles: schema, fitting together, rendering, smoke args."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from coderig_deploy import smoke
from coderig_deploy.cli import app
from coderig_deploy.errors import ProfileError
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import RenderOptions, TargetHost, spec_for
from coderig_deploy.render import render_project

TWO = "editor-qwen7b-starcoder2"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(f"extends: {TWO}\n{body}")
    return path


def test_single_model_profiles_stay_valid_with_the_chat_role() -> None:
    profile = load_profile("budget-4070")
    assert profile.models == [] and profile.model.role == "chat"
    assert [r.tag for r in profile.all_models] == ["qwen2.5-coder:14b-instruct-q4_K_M"]
    assert load_profile("autocomplete-starcoder2").model.role == "autocomplete"


def test_two_model_profile_lists_both_with_roles() -> None:
    profile = load_profile(TWO)
    assert [(r.tag, r.role) for r in profile.all_models] == [
        ("qwen2.5-coder:7b-instruct-q4_K_M", "chat"), ("starcoder2:3b", "autocomplete")]
    assert profile.expect.fim_ttft_ms == 200


def test_max_loaded_models_below_the_model_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="max_loaded_models is 1 but the profile serves 2 models"):
        load_profile(_write(tmp_path, "ollama: {max_loaded_models: 1}\n"))


def test_models_that_do_not_fit_together_are_refused(tmp_path: Path) -> None:
    # Each fits the 16 GB card alone; the 14B at 32K beside the 7B does not.
    body = "models:\n  - {tag: 'qwen2.5-coder:14b-instruct-q4_K_M', num_ctx: 32768, role: chat}\n"
    together = r"p.yaml: the 2 models do not fit in GPU memory together: GPU 0 would hold \d+ MiB of its usable 15944"
    with pytest.raises(ProfileError, match=together):
        load_profile(_write(tmp_path, body))


def test_the_same_model_twice_is_refused(tmp_path: Path) -> None:
    body = "models:\n  - {tag: 'qwen2.5-coder:7b-instruct-q4_K_M', num_ctx: 16384, role: autocomplete}\n"
    with pytest.raises(ProfileError, match="listed twice"):
        load_profile(_write(tmp_path, body))


def test_unknown_role_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, "models:\n  - {tag: 'starcoder2:3b', num_ctx: 4096, role: painting}\n"))
    assert "models.0.role" in str(info.value) and "chat" in str(info.value)


def test_rendered_vars_carry_the_model_beside_the_main_one() -> None:
    options = RenderOptions(model_registry="192.0.2.1:5000", model_manifest_digest="sha256:" + "1" * 64,
                            extra_manifest_digests={"starcoder2:3b": "sha256:" + "3" * 64})
    files = render_project(spec_for(load_profile(TWO), [TargetHost(name="ws1")], options))
    text = files["group_vars/all.yml"].decode().replace("!unsafe ", "")  # Ansible's tag, not YAML's
    data = yaml.safe_load(text)
    assert data["models_variant"] == "coderig/qwen2.5-coder-7b:16k"
    assert data["models_extra"] == [{"tag": "starcoder2:3b", "variant": "coderig/starcoder2-3b:4k", "num_ctx": 4096,
                                     "quantization": "Q4_0", "role": "autocomplete",
                                     "manifest_digest": "sha256:" + "3" * 64}]
    assert data["coderig_expect"]["fim_ttft_ms"] == 200


def test_an_unpinned_extra_model_from_a_plain_http_mirror_is_refused() -> None:
    options = RenderOptions(model_registry="192.0.2.1:5000", model_manifest_digest="sha256:" + "1" * 64)
    with pytest.raises(Exception, match="no pin"):
        spec_for(load_profile(TWO), [TargetHost(name="ws1")], options)


def test_smoke_asks_for_the_editor_checks_of_every_model() -> None:
    args = smoke.host_args(load_profile(TWO))
    editors = [args[i + 1] for i, a in enumerate(args) if a == "--editor"]
    assert editors == ["coderig/qwen2.5-coder-7b:16k=chat", "coderig/starcoder2-3b:4k=autocomplete"]
    assert args[args.index("--expect-fim-ttft-ms") + 1] == "200"


def _plan_cli(*args: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "plan", "--json", *args],
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_plan_of_a_profile_counts_its_other_models_on_other_hardware() -> None:
    """editor-qwen7b-starcoder2 serves a 7B chat model and a 3B FIM model side by side: the 7B alone fits a
    6 GB card, the two together do not, and the profile is served whole or not at all."""
    code, alone = _plan_cli("--profile", "editor-qwen7b-starcoder2", "--model", "qwen2.5-coder:7b-instruct-q4_K_M",
                            "--gpu", "rtx-3050-6gb", "--ctx", "16384", "--kv-cache", "q8_0")
    assert code == 0 and alone["fits"]
    code, whole = _plan_cli("--profile", "editor-qwen7b-starcoder2", "--gpu", "rtx-3050-6gb")
    assert code == 1 and not whole["fits"]
    assert any("with the profile's other models (coderig/starcoder2-3b:4k) loaded beside it, the 2 models do not "
               "fit in GPU memory together: GPU 0 would hold" in n for n in whole["notes"]), whole["notes"]
    code, home = _plan_cli("--profile", "editor-qwen7b-starcoder2")
    assert code == 0 and home["fits"]
    note = next(n for n in home["notes"] if "other models" in n)
    together = int(note.split(": ")[1].split(" MiB")[0])
    assert together > home["vram_mib"] + 1000  # the 3B's weights, cache and context on top of the 7B's


def test_profiles_list_shows_every_model_of_a_profile() -> None:
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["profiles", "list", "--json"]).stdout)}
    editor = rows["editor-qwen7b-starcoder2"]
    profile = load_profile("editor-qwen7b-starcoder2")
    assert editor["models"] == 2 and rows["budget-4070"]["models"] == 1
    assert editor["vram_per_gpu_mib"][0] > profile.plan.per_gpu[0].used_mib + 1000
    assert rows["budget-4070"]["vram_per_gpu_mib"] == [g.used_mib for g in load_profile("budget-4070").plan.per_gpu]


def test_profiles_list_keeps_every_name_whole_at_80_columns() -> None:
    """Profile, GPU and model names are what a user copies into --profile, --gpu and --model: at 80 columns
    the list is two lines a profile with each name whole, at 160 one table row a profile."""
    names = [r["name"] for r in json.loads(CliRunner().invoke(app, ["profiles", "list", "--json"]).stdout)]
    for columns, per_profile in (("80", 2), ("160", 1)):
        proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "profiles", "list"], capture_output=True,
                              text=True, timeout=60, check=False, env={**os.environ, "COLUMNS": columns})
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        assert max(len(line) for line in lines) <= int(columns), proc.stdout
        assert "…" not in proc.stdout
        starts = [line.split()[0] for line in lines]
        assert [s for s in starts if s in names] == names, proc.stdout
        assert len([line for line in lines if line.split()[0] not in names]) == (per_profile - 1) * len(names) + \
            (2 if per_profile == 1 else 0)  # the table's header and rule
        for name in names:
            profile = load_profile(name)
            row = "\n".join(lines[starts.index(name):starts.index(name) + per_profile])
            assert profile.hardware.gpu in row and profile.model.tag in row, row


def test_profiles_list_shows_a_context_as_written_and_the_quant_a_tag_leaves_out(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").write_text("extends: budget-4070\ndescription: odd ctx\n"
                                       "model:\n  tag: qwen2.5-coder:14b\n  num_ctx: 12000\n")
    proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "profiles", "list", "--profiles-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "160"})
    odd = next(line for line in proc.stdout.splitlines() if line.split() and line.split()[0] == "odd")
    budget = next(line for line in proc.stdout.splitlines() if line.split() and line.split()[0] == "budget-4070")
    assert "qwen2.5-coder:14b Q4_K_M" in odd and "12000 q8_0" in odd and "11K" not in odd
    assert "16K q8_0" in budget and "q4_K_M Q4_K_M" not in budget
