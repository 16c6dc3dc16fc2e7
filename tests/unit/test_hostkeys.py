"""Host key strictness in the run's ssh_args, and reasons a person can act on."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from coderig_deploy import hostkeys
from coderig_deploy.project import TargetHost

CFG = "[ssh_connection]\nssh_args = -C -o ControlPersist=60s -o StrictHostKeyChecking=yes\n"
CHANGED = ("Failed to connect to the host via ssh: @@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ "
           "Offending ED25519 key in /k:1 Host key for 10.0.0.5 has changed and you have requested strict "
           "checking. Host key verification failed.")
UNKNOWN = ("Failed to connect to the host via ssh: No ED25519 host key is known for 10.0.0.5 and you have "
           "requested strict checking. Host key verification failed.")


def test_strict_by_default_accept_new_only_when_asked() -> None:
    assert hostkeys.ssh_args(CFG, False).endswith("StrictHostKeyChecking=yes")
    assert hostkeys.ssh_args(CFG, True).endswith("StrictHostKeyChecking=accept-new")


@pytest.mark.parametrize("args", ["-C", "-o StrictHostKeyChecking=no -o StrictHostKeyChecking=yes"])
def test_a_config_without_strict_checking_is_refused(args: str) -> None:
    with pytest.raises(ValueError, match="must hold StrictHostKeyChecking=yes"):
        hostkeys.ssh_args(f"[ssh_connection]\nssh_args = {args}\n", False)


def test_the_rendered_ansible_cfg_is_strict() -> None:
    text = (Path(__file__).parents[2] / "templates" / "ansible.cfg.j2").read_text()
    assert hostkeys.ssh_args(text.replace("{{ spec.forks }}", "5"), False).count("StrictHostKeyChecking") == 1


def test_a_changed_key_is_named(tmp_path: Path) -> None:
    host = TargetHost(name="ws1", address="10.0.0.5", known_hosts=str(tmp_path / "kh"))
    reason = hostkeys.explain(CHANGED, host)
    assert reason.startswith(f"host key for 10.0.0.5 does not match known_hosts {tmp_path / 'kh'}: refused")
    assert f"ssh-keygen -R 10.0.0.5 -f {tmp_path / 'kh'}" in reason


def test_an_unknown_host_says_how_to_add_its_key(tmp_path: Path) -> None:
    host = TargetHost(name="ws1", address="10.0.0.5", port=2222, known_hosts=str(tmp_path / "kh"))
    reason = hostkeys.explain(UNKNOWN, host)
    assert reason.startswith(f"unknown host 10.0.0.5: its key is not in known_hosts {tmp_path / 'kh'}")
    assert f"`ssh-keyscan -p 2222 10.0.0.5 >> {tmp_path / 'kh'}`" in reason and "--accept-new-host-keys" in reason


def test_other_reasons_pass_unchanged() -> None:
    host = TargetHost(name="ws1")
    assert hostkeys.explain("Connection timed out", host) == "Connection timed out"
    assert str(hostkeys.known_hosts_file(host)).endswith(".ssh/known_hosts")


def test_recorded_keys_are_the_lines_added_since_the_snapshot(tmp_path: Path) -> None:
    known = tmp_path / "kh"
    known.write_text("10.0.0.4 ssh-ed25519 AAAAold\n")
    hosts = [TargetHost(name="ws1", known_hosts=str(known)), TargetHost(name="lo", connection="local")]
    before = hostkeys.snapshot(hosts)
    assert list(before) == [known]
    known.write_text("10.0.0.4 ssh-ed25519 AAAAold\n10.0.0.5 ssh-ed25519 AAAAnew\n")
    assert hostkeys.recorded(before, hosts) == [f"{known}: 10.0.0.5 ssh-ed25519"]


def test_a_hashed_entry_is_named_by_the_host_it_matches(tmp_path: Path) -> None:
    known = tmp_path / "kh"
    hosts = [TargetHost(name="ws1", address="10.0.0.5", port=2222, known_hosts=str(known))]
    before = hostkeys.snapshot(hosts)
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, b"[10.0.0.5]:2222", hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    known.write_text(f"{hashed} ssh-ed25519 AAAAnew\n|1|bm90|bm90 ssh-rsa AAAAother\n")
    assert hostkeys.recorded(before, hosts) == [f"{known}: [10.0.0.5]:2222 ssh-ed25519",
                                                f"{known}: |1|bm90|bm90 ssh-rsa"]
