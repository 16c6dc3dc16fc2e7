"""The rendered project is valid Ansible: syntax-check and ansible-lint's production profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from coderig_deploy.profiles import list_profiles, load_profile
from coderig_deploy.project import RenderOptions, TargetHost, spec_for
from coderig_deploy.render import render_project, write_project

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} is part of the test dependencies (pip install -e .[test])"
    return found


def _render(dest: Path, profile: str = "dual-4090") -> Path:
    hosts = [TargetHost(name="ws1", address="192.0.2.10", user="root"), TargetHost(name="localhost", connection="local")]
    options = RenderOptions(model_registry="192.0.2.1:5000", model_manifest_digest="sha256:" + "1" * 64,
                            ollama_archive_url="http://192.0.2.1:8088/v0.33.0/ollama-linux-amd64.tar.zst",
                            ollama_archive_checksum="sha256:" + "2" * 64)
    return write_project(render_project(spec_for(load_profile(profile), hosts, options)), dest)


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"}


def test_every_profile_renders_a_project_that_passes_syntax_check(tmp_path: Path) -> None:
    for name in list_profiles():
        project = _render(tmp_path / name, name)
        proc = subprocess.run([_tool("ansible-playbook"), "--syntax-check", "site.yml"], cwd=project,
                              env=_env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"


def test_rendered_project_passes_ansible_lint_production(tmp_path: Path) -> None:
    project = _render(tmp_path / "project")
    proc = subprocess.run([_tool("ansible-lint"), "--profile", "production", "--offline", "--nocolor", "site.yml"],
                          cwd=project, env=_env(), capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passed" in (proc.stdout + proc.stderr)
