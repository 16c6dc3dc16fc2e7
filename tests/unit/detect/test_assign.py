"""Each host's profile: the inventory's coderig_profile (host or group), --profile, or auto."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderig_deploy.detect.assign import HostProfile, assign
from coderig_deploy.detect.facts import HostFacts, host_facts, unreachable
from coderig_deploy.detect.probe import ProbeTarget
from coderig_deploy.errors import UnknownNameError, UserInputError
from coderig_deploy.project import TargetHost
from coderig_deploy.targets import from_inventory, inventory_profiles

INVENTORY = """\
[towers]
big1 ansible_host=192.0.2.12
big2 ansible_host=192.0.2.13 coderig_profile=auto

[desks]
small1 ansible_host=192.0.2.11
other1 ansible_host=192.0.2.14

[towers:vars]
coderig_profile=dual-4090

[desks:vars]
coderig_profile=budget-4070
"""
MEM = "MemTotal: 131072000 kB\n"


def recorded(answers: dict[str, str]):  # type: ignore[no-untyped-def]
    """detect from recorded nvidia-smi output per host (no SSH): the probe's parsing runs as on a host."""
    def detect(targets: list[ProbeTarget]) -> list[HostFacts]:
        return [host_facts(t.name, {"nvidia-smi": answers[t.name], "meminfo": MEM}) if t.name in answers
                else unreachable(t.name, "cannot SSH to root@192.0.2.99:22: timed out") for t in targets]
    return detect


SMI_4090 = "0, NVIDIA GeForce RTX 4090, GPU-1, 24564, 00000000:01:00.0, 0x268410DE, 580.95.05\n"


def test_inventory_sets_coderig_profile_per_group_and_host(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(INVENTORY)
    assert inventory_profiles(path) == {"big1": "dual-4090", "big2": "auto", "small1": "budget-4070",
                                        "other1": "budget-4070"}


def test_inventory_wins_over_the_command_line_and_auto_detects(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(INVENTORY)
    hosts = from_inventory(path)
    choices = {c.host: c for c in assign(hosts, "midrange-4090", inventory_profiles(path),
                                         detect=recorded({"big2": SMI_4090}))}
    assert choices["big1"] == HostProfile("big1", "dual-4090", "dual-4090 from the inventory's coderig_profile",
                                          "inventory")
    assert choices["big2"].profile == "midrange-4090" and choices["big2"].source == "auto"
    assert choices["big2"].reason.startswith("auto: 1x rtx-4090; midrange-4090 uses 1 GPU(s)")


def test_command_line_profile_for_hosts_the_inventory_leaves_open() -> None:
    hosts = [TargetHost(name="ws1"), TargetHost(name="ws2")]
    choices = assign(hosts, "budget-4070", {"ws2": "dual-4090"})
    assert [(c.host, c.profile, c.source) for c in choices] == [
        ("ws1", "budget-4070", "--profile"), ("ws2", "dual-4090", "inventory")]


def test_an_unreachable_host_gets_no_profile_with_the_reason() -> None:
    choices = assign([TargetHost(name="ws1"), TargetHost(name="ws9")], "auto", {},
                     detect=recorded({"ws1": SMI_4090}))
    assert [c.profile for c in choices] == ["midrange-4090", None]
    assert choices[1].reason == "not detected: cannot SSH to root@192.0.2.99:22: timed out"


def test_a_host_without_any_profile_is_bad_input() -> None:
    with pytest.raises(UserInputError, match="host 'ws1' has no profile"):
        assign([TargetHost(name="ws1")], None, {})


def test_an_unknown_profile_name_in_the_inventory_is_bad_input() -> None:
    with pytest.raises(UnknownNameError):
        assign([TargetHost(name="ws1")], None, {"ws1": "no-such-profile"})


def test_coderig_profile_must_be_a_name(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    ws1:\n      coderig_profile: [1, 2]\n")
    with pytest.raises(UserInputError, match="coderig_profile must be a profile name or auto"):
        inventory_profiles(path)
