"""Shipped profiles, extends, and every way a profile file can be wrong."""

from pathlib import Path

import pytest

from coderig_deploy.errors import ProfileError, UnknownNameError
from coderig_deploy.profiles import list_profiles, load_profile, load_profile_file

BAD = Path(__file__).parent / "bad_profiles"
SHIPPED = list_profiles()


def test_the_products_profiles_are_shipped():
    for name in ("budget-4070", "midrange-4090", "dual-4090", "rtx3090-32b", "rtx5070ti-14b",
                 "autocomplete-starcoder2", "deepseek-33b-4090", "single-48gb-70b"):
        assert name in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_fits_its_own_hardware(name):
    profile = load_profile(name)
    plan = profile.plan
    assert plan.fits, f"{name}: {plan.per_gpu}"
    assert plan.gpu_fraction == 1.0
    assert len(plan.per_gpu) == profile.hardware.count
    assert profile.ollama_env()["OLLAMA_HOST"] == "127.0.0.1:11434"
    # The fit model's prediction must clear the profile's own pass line.
    assert plan.decode_tok_s >= profile.expect.decode_tok_s - profile.expect.tolerance_tok_s


def test_dual_4090_matches_the_seed():
    p = load_profile("dual-4090")
    assert (p.hardware.gpu, p.hardware.count) == ("rtx-4090", 2)
    assert p.model.tag == "llama3.1:70b-instruct-q4_K_M"
    assert p.ollama_env()["OLLAMA_MAX_LOADED_MODELS"] == "1"
    assert all(g.layers > 0 for g in p.plan.per_gpu)


def test_extends_overrides_only_what_it_names():
    base, child = load_profile("midrange-4090"), load_profile("rtx3090-32b")
    assert child.hardware.gpu == "rtx-3090" and child.hardware.count == base.hardware.count
    assert child.model == base.model and child.ollama == base.ollama
    assert child.driver.open_kernel_modules is False and child.driver.branch == base.driver.branch


def test_ollama_env_is_exactly_the_planned_variables():
    env = load_profile("budget-4070").ollama_env()
    assert env == {
        "OLLAMA_HOST": "127.0.0.1:11434",
        "OLLAMA_MODELS": "/usr/share/ollama/.ollama/models",
        "OLLAMA_KEEP_ALIVE": "30m",
        "OLLAMA_MAX_LOADED_MODELS": "1",
        "OLLAMA_NUM_PARALLEL": "1",
        "OLLAMA_FLASH_ATTENTION": "1",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_CONTEXT_LENGTH": "16384",
    }


def test_variant_name():
    assert load_profile("midrange-4090").model.variant_name == "coderig/qwen2.5-coder-32b:24k"


def test_unknown_profile_suggests_close_match():
    with pytest.raises(UnknownNameError, match="dual-4090"):
        load_profile("dual-4900")


@pytest.mark.parametrize(
    "file, message",
    [
        ("unknown-key.yaml", r"unknown-key.yaml:4: ollama.kv_cache: unknown key"),
        ("malformed.yaml", r"malformed.yaml:4: invalid YAML"),
        ("unknown-gpu.yaml", r"unknown-gpu.yaml:4: hardware.gpu: unknown GPU 'rtx-4090ti'. Did you mean rtx-4090"),
        ("injection.yaml", r"injection.yaml:4: ollama.keep_alive: String should match pattern"),
        ("exposed.yaml", r"exposes Ollama"),
    ],
)
def test_bad_profiles_name_file_line_and_field(file, message):
    with pytest.raises(ProfileError, match=message):
        load_profile_file(BAD / file)


def test_a_profile_that_does_not_fit_loads_but_its_plan_says_so():
    p = load_profile_file(BAD / "too-big.yaml")
    assert not p.plan.fits


def test_extends_loop_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\ndescription: a\n")
    (tmp_path / "b.yaml").write_text("extends: a\ndescription: b\n")
    with pytest.raises(ProfileError, match="loops back"):
        load_profile("a", tmp_path)


def test_user_directory_is_searched_first(tmp_path):
    (tmp_path / "budget-4070.yaml").write_text("extends: midrange-4090\ndescription: mine\n")
    # extends finds the shipped midrange-4090; the name resolves to the user's file
    assert load_profile("budget-4070", tmp_path).description == "mine"


def test_local_repo_source_needs_its_url(tmp_path):
    (tmp_path / "offline.yaml").write_text("extends: budget-4070\ndescription: offline\ndriver: {source: local-repo}\n")
    with pytest.raises(ProfileError, match="local_repo_url"):
        load_profile("offline", tmp_path)


def test_local_repo_url_reaches_the_rendered_variables(tmp_path):
    from coderig_deploy.project import TargetHost, spec_for
    from coderig_deploy.render import render_project

    (tmp_path / "offline.yaml").write_text(
        "extends: budget-4070\ndescription: offline\n"
        "driver: {source: local-repo, local_repo_url: 'http://10.0.0.5/nvidia', "
        "local_repo_key_url: 'http://10.0.0.5/nvidia/key.asc', "
        "repo_key_fingerprint: 'eb69 3b30 35cd 5710 e231  e123 a4b4 6996 3bf8 63cc'}\n")
    profile = load_profile("offline", tmp_path)
    files = render_project(spec_for(profile, [TargetHost(name="ws1", address="10.0.0.7")]))
    group_vars = next(v for k, v in files.items() if str(k).endswith("group_vars/all.yml"))
    text = group_vars if isinstance(group_vars, str) else group_vars.decode()
    assert 'nvidia_driver_local_repo_url: "http://10.0.0.5/nvidia"' in text
    assert 'nvidia_driver_local_repo_key_url: "http://10.0.0.5/nvidia/key.asc"' in text
    assert 'nvidia_driver_repo_key_fingerprint: "EB693B3035CD5710E231E123A4B469963BF863CC"' in text
