"""The rendered inventory, the state file round trip, and the root requirement."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coderig_deploy.errors import EnvironmentProblem, UserInputError
from coderig_deploy.sandbox import HostSpec, Lab, inventory, state
from coderig_deploy.sandbox.state import GpuSetup, HostState, LabState


def lab_state(home: Path) -> LabState:
    hosts = {
        name: HostState(name=name, slot=slot, ip=f"10.80.1.{10 + slot}", netns=f"ns-{name}",
                        veth=f"crv-{slot}", cgroup=f"x-{name}", gpu=gpu)
        for slot, (name, gpu) in enumerate([
            ("big1", GpuSetup(slug="rtx-4090", count=2)),
            ("small1", GpuSetup(slug="rtx-4070", count=1)),
            ("plain1", GpuSetup()),
        ])}
    return LabState(lab_id="abc123", home=home, bridge="crb-abc123", subnet="10.80.1.0/24",
                    bridge_ip="10.80.1.1", hosts=hosts)


def test_inventory_checks_host_keys_and_groups_by_gpu(tmp_path: Path) -> None:
    text = inventory.render(lab_state(tmp_path), tmp_path / "id", tmp_path / "known_hosts")
    doc = yaml.safe_load(text)["all"]
    assert doc["vars"]["ansible_ssh_private_key_file"] == str(tmp_path / "id")
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in doc["vars"]["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in doc["vars"]["ansible_ssh_common_args"]
    hosts = doc["children"]["sandbox"]["hosts"]
    assert list(hosts) == ["big1", "small1", "plain1"]
    assert hosts["big1"] == {"ansible_host": "10.80.1.10", "coderig_sandbox_gpu": "rtx-4090",
                             "coderig_sandbox_gpu_count": 2}
    assert set(doc["children"]["gpu_rtx_4090"]["hosts"]) == {"big1"}
    assert set(doc["children"]["gpu_none"]["hosts"]) == {"plain1"}


def test_state_round_trip(tmp_path: Path) -> None:
    original = lab_state(tmp_path)
    state.save(original)
    assert state.load(tmp_path) == original
    assert state.load(tmp_path / "nothing") is None


def test_up_and_down_need_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    lab = Lab(tmp_path)
    with pytest.raises(EnvironmentProblem, match="needs root"):
        lab.up([HostSpec()])
    with pytest.raises(EnvironmentProblem, match="needs root"):
        lab.down()
    assert not (tmp_path / "lab.json").exists()


def test_host_spec_card_count_defaults() -> None:
    assert HostSpec().cards == 0 and HostSpec(gpu="rtx-4090").cards == 1
    assert HostSpec(gpu="rtx-4090", count=0).cards == 0
    assert HostSpec(gpu="rtx-4090", count=2).cards == 2


def test_lab_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODERIG_SANDBOX_HOME", str(tmp_path))
    assert Lab().home == tmp_path.resolve()
    monkeypatch.delenv("CODERIG_SANDBOX_HOME")
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setenv("SUDO_USER", "carol")
    assert Lab().home == Path("/var/lib/coderig/sandbox/carol")


@pytest.mark.parametrize("spec,message", [
    (HostSpec(gpu="rtx-9999"), "unknown GPU 'rtx-9999'"),
    (HostSpec(count=2), "without a model"),
    (HostSpec(name="Bad_Name"), "not a valid host name"),
])
def test_bad_specs_fail_before_anything_exists(spec: HostSpec, message: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    with pytest.raises(UserInputError, match=message):
        Lab(tmp_path).up([spec])
    assert list(tmp_path.iterdir()) == []
