"""Host arguments and inventories become validated TargetHosts; the runner needs ansible-playbook."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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


def _grouped_inventory(root: Path) -> Path:
    """The review's inventory: a port set on the group, a user in group_vars/all.yml."""
    (root / "group_vars").mkdir()
    (root / "group_vars" / "all.yml").write_text("ansible_user: deploy\nansible_become_password: s3cret-pw\n")
    inventory = root / "hosts.yml"
    inventory.write_text("all:\n  children:\n    gpus:\n      vars:\n        ansible_port: 2222\n"
                         "      hosts:\n        ws1:\n          ansible_host: 10.0.0.5\n")
    return inventory


def test_group_vars_reach_the_target_as_ansible_resolves_them(tmp_path: Path) -> None:
    [ws1] = from_inventory(_grouped_inventory(tmp_path))
    assert (ws1.name, ws1.address, ws1.port, ws1.user, ws1.become) == ("ws1", "10.0.0.5", 2222, "deploy", True)


def test_a_host_var_wins_over_its_group_var(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[gpus]\nws1 ansible_port=2200\nws2\n[gpus:vars]\nansible_port=2222\nansible_become=false\n")
    targets = {t.name: t for t in from_inventory(inventory)}
    assert (targets["ws1"].port, targets["ws2"].port) == (2200, 2222)
    assert not targets["ws1"].become


def test_a_hostile_value_in_group_vars_is_refused(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "gpus.yml").write_text("ansible_host: \"10.0.0.5 -oProxyCommand=sh\"\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[gpus]\nws1\n")
    with pytest.raises(UserInputError, match="host 'ws1': address: .*not a valid host"):
        from_inventory(inventory)


def test_render_keeps_group_vars_and_leaves_the_become_password_out(tmp_path: Path) -> None:
    from coderig_deploy.cli.render import render_cmd

    inventory, out = _grouped_inventory(tmp_path), tmp_path / "out"
    render_cmd(profile="budget-4070", output=out, inventory=inventory, json_out=True)
    rendered = yaml.safe_load((out / "inventory.yml").read_text())
    ws1 = rendered["all"]["children"]["coderig"]["hosts"]["ws1"]
    assert (ws1["ansible_host"], ws1["ansible_port"], ws1["ansible_user"]) == ("10.0.0.5", 2222, "deploy")
    assert not [p for p in out.rglob("*") if p.is_file() and b"s3cret-pw" in p.read_bytes()]


@pytest.mark.parametrize("name", ["coderig", "coderig_budget_4070", "all", "ungrouped"])
def test_a_host_named_like_a_group_of_the_rendered_inventory_is_refused(name: str) -> None:
    # Ansible would take the name for the group ("Found both group and host with same name")
    # and the play would silently run on fewer hosts.
    with pytest.raises(UserInputError, match=f"host '{name}': .*group"):
        from_argument(name)


def test_an_inventory_host_named_like_the_play_group_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[gpus]\ncoderig\nws2\n")
    with pytest.raises(UserInputError, match="host 'coderig': .*group"):
        from_inventory(inventory)


@pytest.mark.parametrize("name", ["coderig1", "coderig-ws", "coderig_ws.lab.example", "allhosts"])
def test_names_that_only_look_like_a_group_are_fine(name: str) -> None:
    assert from_argument(name).name == name


@pytest.mark.parametrize(("args", "dropped"), [
    ("-o ProxyJump=bastion", "ProxyJump=bastion"),
    ("-J deploy@bastion", "-J"),
    ("-o GlobalKnownHostsFile=/etc/ssh/site_known_hosts", "GlobalKnownHostsFile=/etc/ssh/site_known_hosts"),
    ("-i ~/.ssh/other", "-i"),
    ("-o UserKnownHostsFile=/k -o 'ProxyCommand ssh -W %h:%p gw'", "ProxyCommand=ssh -W %h:%p gw"),
    ("-oProxyJump=gw", "ProxyJump=gw"),
])
def test_ssh_options_the_rendered_project_would_drop_are_refused_by_name(
        tmp_path: Path, args: str, dropped: str) -> None:
    """A fleet behind a bastion, set on a group: the rendered inventory writes its own SSH options, so the jump
    host would vanish and every host time out; said up front instead, with the option named."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_ssh_common_args": args},
                                                 "hosts": {"ws1": {"ansible_host": "10.0.0.5"}}}}))
    with pytest.raises(UserInputError) as caught:
        from_inventory(inventory)
    assert str(caught.value).startswith(f"host 'ws1': ansible_ssh_common_args sets {dropped}, which the rendered")


def test_ssh_options_the_rendered_project_makes_good_are_taken(tmp_path: Path) -> None:
    """The sandbox's own inventory (known_hosts, strict checking, IdentitiesOnly) and keep-alive options."""
    inventory = tmp_path / "hosts.yml"
    args = ("-o 'UserKnownHostsFile /k/known_hosts' -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes "
            "-o IdentitiesOnly=yes -o 'ServerAliveInterval 30' -C -o LogLevel=ERROR -o ForwardAgent=yes")
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"ansible_ssh_common_args": args,
                                                          "ansible_ssh_extra_args": "-o ConnectTimeout=10"},
                                                 "hosts": {"ws1": {"ansible_host": "10.0.0.5"}}}}))
    (ws1,) = from_inventory(inventory)
    assert ws1.known_hosts == "/k/known_hosts"


def test_extra_args_are_checked_too(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.5 ansible_ssh_extra_args='-o ProxyJump=gw'\n")
    with pytest.raises(UserInputError, match="ansible_ssh_extra_args sets ProxyJump=gw"):
        from_inventory(inventory)


def test_vars_files_are_the_inventorys_not_the_working_directorys(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from inside another Ansible repository: its group_vars/ must not reach an inventory elsewhere."""
    elsewhere = tmp_path / "other-repo"
    (elsewhere / "group_vars").mkdir(parents=True)
    (elsewhere / "group_vars" / "all.yml").write_text("ansible_user: fromcwd\nansible_port: 2200\n")
    inventory = tmp_path / "inv" / "hosts.ini"
    inventory.parent.mkdir()
    inventory.write_text("ws1 ansible_host=10.0.0.5\n")
    monkeypatch.chdir(elsewhere)
    (ws1,) = from_inventory(inventory)
    assert (ws1.user, ws1.port) == (None, None)
    # (another directory: Ansible caches which vars files a directory holds for the life of the process)
    beside = tmp_path / "inv2" / "hosts.ini"
    (beside.parent / "group_vars").mkdir(parents=True)
    (beside.parent / "group_vars" / "all.yml").write_text("ansible_user: deploy\n")
    beside.write_text("ws1 ansible_host=10.0.0.5\n")
    (ws1,) = from_inventory(beside)
    assert (ws1.user, ws1.port) == ("deploy", None)


def test_common_group_vars_settings_are_read_as_ansible_reads_them(tmp_path: Path) -> None:
    """~ in a key or known_hosts path is the controller user's home; interpreter discovery is no interpreter."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "ansible_python_interpreter: auto_silent\nansible_ssh_private_key_file: ~/.ssh/id_ed25519\n"
        "ansible_ssh_extra_args: -o UserKnownHostsFile=~/.ssh/site_known_hosts\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.5\n")
    (ws1,) = from_inventory(inventory)
    home = Path.home()
    assert ws1.python is None
    assert ws1.key_file == str(home / ".ssh/id_ed25519")
    assert ws1.known_hosts == str(home / ".ssh/site_known_hosts")


def test_a_templated_connection_variable_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("ansible_user: \"{{ lookup('env', 'USER') }}\"\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.5\n")
    with pytest.raises(UserInputError, match=r"host 'ws1': ansible_user is a template .*give it with --user"):
        from_inventory(inventory)


def test_a_broken_vars_file_is_the_users_input_not_a_bug(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("ansible_user: [deploy\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.5\n")
    with pytest.raises(UserInputError) as caught:
        from_inventory(inventory)
    assert str(caught.value).startswith(f"{inventory}: ") and "\n" not in str(caught.value)
