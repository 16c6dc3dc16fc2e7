"""Host arguments and inventories become validated TargetHosts; the runner needs ansible-playbook."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderig_deploy.errors import EnvironmentProblem, UserInputError
from coderig_deploy.runner import require_ansible_playbook
from coderig_deploy.targets import from_argument, from_inventory


@pytest.mark.parametrize(("text", "want"), [
    ("ws1", {"name": "ws1", "user": None, "port": None, "become": False}),
    ("root@10.0.0.5", {"name": "10.0.0.5", "user": "root", "become": False}),
    ("deploy@ws2.lab.example:2222", {"name": "ws2.lab.example", "user": "deploy", "port": 2222, "become": True}),
    ("[fd00::5]:22", {"name": "fd00::5", "port": 22}),
    ("localhost", {"name": "localhost", "connection": "local"}),
])
def test_host_arguments(text: str, want: dict[str, object]) -> None:
    target = from_argument(text)
    assert {k: getattr(target, k) for k in want} == want


@pytest.mark.parametrize("text", ["bad;host", "a b", "x@y@z", "ws1:99999x", "$(id)"])
def test_unsafe_host_arguments_are_bad_input(text: str) -> None:
    with pytest.raises(UserInputError):
        from_argument(text)


def test_inventory_connection_variables_are_taken(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[gpu]\nws1 ansible_host=10.0.0.1 ansible_user=ops ansible_port=2200 "
        "ansible_ssh_private_key_file=/keys/ws1 "
        "ansible_ssh_common_args='-o UserKnownHostsFile=/etc/coderig/known_hosts -o StrictHostKeyChecking=yes'\n"
        "here ansible_connection=local\n")
    targets = {t.name: t for t in from_inventory(inventory)}
    ws1, here = targets["ws1"], targets["here"]
    assert (ws1.address, ws1.user, ws1.port, ws1.key_file, ws1.known_hosts, ws1.become) == (
        "10.0.0.1", "ops", 2200, "/keys/ws1", "/etc/coderig/known_hosts", True)
    assert here.connection == "local" and here.user is None


def test_an_inventory_value_with_jinja_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    ws1:\n      ansible_host: \"{{ lookup('pipe', 'id') }}\"\n")
    with pytest.raises(UserInputError, match="ws1"):
        from_inventory(inventory)


def test_missing_ansible_playbook_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="ansible-playbook not found"):
        require_ansible_playbook(path=str(tmp_path))
    assert require_ansible_playbook().endswith("ansible-playbook")
