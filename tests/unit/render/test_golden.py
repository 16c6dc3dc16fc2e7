"""Rendering is pure and deterministic: each case's spec renders to its golden files.

Cases live in cases/<name>/spec.yaml (a ProjectSpec, plus `_what`) with the
expected project files under cases/<name>/expected/. After an intended template
change, regenerate with: UPDATE_GOLDEN=1 pytest tests/unit/render
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from coderig_deploy.project import ProjectSpec
from coderig_deploy.render import BUNDLE_ROLES, CONTAINER_ROLES, TEMPLATES, render_project
from coderig_deploy.resources import shipped_dir

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "spec.yaml").is_file())


class _AnsibleVarsLoader(yaml.SafeLoader):
    """Reads `!unsafe` as Ansible does: a plain string that is never templated."""


_AnsibleVarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_spec(case: str) -> ProjectSpec:
    data = yaml.safe_load((CASES_DIR / case / "spec.yaml").read_text())
    data.pop("_what", None)
    return ProjectSpec.model_validate(data)


@pytest.mark.parametrize("case", CASES)
def test_rendered_files_match_the_golden_files(case: str) -> None:
    files = render_project(load_spec(case))
    expected_dir = CASES_DIR / case / "expected"
    for target in TEMPLATES.values():
        golden = expected_dir / target
        if os.environ.get("UPDATE_GOLDEN"):
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(files[target])
        assert golden.is_file(), f"no golden file {golden}: run with UPDATE_GOLDEN=1"
        assert files[target].decode() == golden.read_text(), f"{case}: {target} differs from its golden file"


@pytest.mark.parametrize("case", CASES)
def test_same_spec_same_bytes(case: str) -> None:
    assert render_project(load_spec(case)) == render_project(load_spec(case))


def test_roles_are_copied_byte_for_byte() -> None:
    files = render_project(load_spec(CASES[0]))
    roles = shipped_dir("playbooks") / "roles"
    copied = {k: v for k, v in files.items() if k.startswith("roles/")}
    on_disk = {f"roles/{p.relative_to(roles).as_posix()}": p.read_bytes()
               for p in roles.rglob("*") if p.is_file() and "__pycache__" not in p.parts
               and p.relative_to(roles).parts[0] not in BUNDLE_ROLES + CONTAINER_ROLES}  # only in some projects
    assert copied == on_disk
    assert {k.split("/")[1] for k in copied} == {"host_lock", "preflight", "nvidia_driver", "ollama", "models", "smoke"}


def test_the_drop_in_environment_is_exactly_the_specs() -> None:
    spec = load_spec("dual_4090_sandbox")
    group_vars = yaml.load(render_project(spec)["group_vars/all.yml"], Loader=_AnsibleVarsLoader)
    assert group_vars["ollama_env"] == spec.ollama_env
    assert group_vars["models_registry"] == "10.80.0.1:5000"
    assert group_vars["preflight_resource_policy"] == "warn"
    assert group_vars["coderig_profile_description"] == spec.description


def test_free_text_is_marked_unsafe_for_ansible_templating() -> None:
    spec = load_spec("single_48gb_ip_only").model_copy(update={"description": "costs {{ lookup('pipe', 'id') }} 100%"})
    text = render_project(spec)["group_vars/all.yml"].decode()
    assert "coderig_profile_description: !unsafe \"costs {{ lookup('pipe', 'id') }} 100%\"" in text
