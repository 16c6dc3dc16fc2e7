"""Profiles with several models and roles: schema, fitting together, rendering, smoke args."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coderig_deploy import smoke
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
    with pytest.raises(ProfileError, match=r"do not fit in GPU memory together: GPU 0 would hold \d+ MiB of 16380"):
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
