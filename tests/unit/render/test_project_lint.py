"""The rendered project is valid Ansible: syntax-check and ansible-lint's production profile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coderig_deploy.profiles import list_profiles, load_profile
from coderig_deploy.project import BenchmarkSeam, RenderOptions, TargetHost, spec_for
from coderig_deploy.render import render_fleet, render_project, write_project

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} is part of the test dependencies (pip install -e .[test])"
    return found


def _render(dest: Path, profile: str = "dual-4090", profiles_dir: Path | None = None) -> Path:
    hosts = [TargetHost(name="ws1", address="192.0.2.10", user="root"), TargetHost(name="localhost", connection="local")]
    options = RenderOptions(model_registry="192.0.2.1:5000", model_manifest_digest="sha256:" + "1" * 64,
                            extra_manifest_digests={"starcoder2:3b": "sha256:" + "3" * 64},
                            ollama_archive_url="http://192.0.2.1:8088/v0.33.0/ollama-linux-amd64.tar.zst",
                            ollama_archive_checksum="sha256:" + "2" * 64)
    return write_project(render_project(spec_for(load_profile(profile, profiles_dir), hosts, options)), dest)


# The representative set the whole-directory lint covers (linting all 8 profiles this
# way took 96 s on a busy 2-core machine, ~12 s each; they differ only in values, the
# set below takes every branch of the templates): every optional variable and host
# setting on, on a two-GPU plan (a list inside coderig_plan) ...
_LOCAL_REPO_PROFILE = """\
extends: dual-4090
name: lint-local-repo
driver:
  source: local-repo
  local_repo_url: https://apt.example.internal/nvidia
  local_repo_key_url: https://apt.example.internal/nvidia/key.asc
"""


def _render_everything_on(dest: Path, profiles: Path) -> Path:
    profiles.mkdir()
    (profiles / "lint-local-repo.yaml").write_text(_LOCAL_REPO_PROFILE)
    hosts = [TargetHost(name="ws1", address="192.0.2.10", port=2222, user="deploy", key_file="/keys/id_ed25519",
                        known_hosts="/keys/known_hosts", become=True, python="/usr/bin/python3"),
             TargetHost(name="localhost", connection="local")]
    options = RenderOptions(forks=10, allow_reboot=True, model_registry="192.0.2.1:5000",
                            model_manifest_digest="sha256:" + "1" * 64,
                            ollama_archive_url="http://192.0.2.1:8088/v0.33.0/ollama-linux-amd64.tar.zst",
                            ollama_archive_checksum="sha256:" + "ab" * 32, resource_policy="warn",
                            benchmark=BenchmarkSeam(program="coderig-hostbench.pyz", args=["--model", "m"]))
    spec = spec_for(load_profile("lint-local-repo", profiles), hosts, options)
    return write_project(render_project(spec), dest)


def _render_nothing_optional(dest: Path) -> Path:
    """... and a one-GPU profile on one host with no option at all."""
    return write_project(render_project(spec_for(load_profile("budget-4070"), [TargetHost(name="ws1")])), dest)


def _render_fleet(dest: Path) -> Path:
    """... and a fleet: hosts of two profiles in one project (a group and group_vars each)."""
    specs = [spec_for(load_profile("budget-4070"), [TargetHost(name="ws1", address="192.0.2.11")]),
             spec_for(load_profile("dual-4090"), [TargetHost(name="ws2", address="192.0.2.12", user="root")])]
    return write_project(render_fleet(specs), dest)


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"}


def test_every_profile_renders_a_project_that_passes_syntax_check(tmp_path: Path) -> None:
    for name in list_profiles():
        project = _render(tmp_path / name, name)
        proc = subprocess.run([_tool("ansible-playbook"), "--syntax-check", "site.yml"], cwd=project,
                              env=_env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("variant", ["everything-on", "nothing-optional", "fleet"])
def test_whole_rendered_project_passes_ansible_lint_production(tmp_path: Path, variant: str) -> None:
    """Linted as a team that commits the project would: the whole directory, not site.yml."""
    project = (_render_everything_on(tmp_path / "project", tmp_path / "profiles") if variant == "everything-on"
               else _render_fleet(tmp_path / "project") if variant == "fleet"
               else _render_nothing_optional(tmp_path / "project"))
    proc = subprocess.run([_tool("ansible-lint"), "--profile", "production", "--offline", "--nocolor"],
                          cwd=project, env=_env(), capture_output=True, text=True, check=False, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output
    # The whole directory was linted: the vars file and every role's tasks, not one playbook.
    processed = int(re.search(r"in (\d+) files processed", output).group(1))  # type: ignore[union-attr]
    role_files = sum(1 for _ in (project / "roles").rglob("*.yml"))
    assert processed >= role_files + 3, output  # + site.yml, inventory.yml, group_vars (all.yml or one per profile)
