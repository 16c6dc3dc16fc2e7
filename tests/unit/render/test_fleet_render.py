"""A fleet project: hosts of several profiles in one rendered project, as Ansible reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import TargetHost, spec_for
from coderig_deploy.render import group_name, render_fleet, render_project, write_project


def _specs() -> list:  # type: ignore[type-arg]
    return [spec_for(load_profile("dual-4090"), [TargetHost(name="big1", address="192.0.2.12"),
                                                 TargetHost(name="big2", address="192.0.2.13")]),
            spec_for(load_profile("budget-4070"), [TargetHost(name="small1", address="192.0.2.11")])]


def test_one_profile_renders_exactly_as_a_single_profile_project() -> None:
    spec = _specs()[0]
    assert render_fleet([spec]) == render_project(spec)


def test_one_group_and_one_vars_file_per_profile() -> None:
    files = render_fleet(_specs())
    inventory = yaml.safe_load(files["inventory.yml"])
    groups = inventory["all"]["children"]["coderig"]["children"]
    assert {g: sorted(v["hosts"]) for g, v in groups.items()} == {
        "coderig_budget_4070": ["small1"], "coderig_dual_4090": ["big1", "big2"]}
    assert "group_vars/all.yml" not in files
    for group, profile in (("coderig_budget_4070", "budget-4070"), ("coderig_dual_4090", "dual-4090")):
        data = yaml.safe_load(files[f"group_vars/{group}.yml"].replace(b"!unsafe ", b""))
        assert data["coderig_profile"] == profile
        assert data["models_tag"] == load_profile(profile).model.tag
    assert b"for profile budget-4070, dual-4090" in files["site.yml"]
    assert files["README.md"].count(b"## coderig-deploy project: ") == 2


def test_ansible_gives_each_host_its_own_profiles_variables(tmp_path: Path) -> None:
    project = write_project(render_fleet(_specs()), tmp_path / "p")
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), "-i", "inventory.yml",
                           "--list", "--yaml", "--playbook-dir", "."], cwd=project, capture_output=True,
                          text=True, check=True)
    hostvars = {}

    def collect(node: dict) -> None:  # type: ignore[type-arg]
        for name, values in (node.get("hosts") or {}).items():
            hostvars[name] = values
        for child in (node.get("children") or {}).values():
            collect(child)

    collect(yaml.safe_load(proc.stdout)["all"])
    assert {h: v["coderig_profile"] for h, v in hostvars.items()} == {
        "big1": "dual-4090", "big2": "dual-4090", "small1": "budget-4070"}
    assert hostvars["big1"]["preflight_gpu_count"] == 2 and hostvars["small1"]["preflight_gpu_count"] == 1


def test_the_same_fleet_renders_the_same_bytes() -> None:
    assert render_fleet(_specs()) == render_fleet(list(reversed(_specs())))


def test_group_names_are_ansible_safe() -> None:
    assert group_name("my.profile-2") == "coderig_my_profile_2"


def test_a_bundle_cannot_serve_a_fleet() -> None:
    from coderig_deploy.bundle.install import BundleInstall

    specs = _specs()
    fake = specs[0].model_copy(update={"bundle": BundleInstall.model_construct()})
    with pytest.raises(UserInputError, match="cannot provision hosts of several profiles"):
        render_fleet([fake, specs[1]])
