"""bundle_sync's piece.yml and its bundle_sync_stream action, run by ansible-playbook over a local
connection: the bytes are hashed as they arrive, and only a verified copy is ever installed."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path


from coderig_deploy.resources import shipped_dir

BIN = Path(sys.executable).parent
PLAY = """\
- name: Copy one piece
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Copy the piece
      ansible.builtin.include_role:
        name: bundle_sync
        tasks_from: piece
"""


def run_piece(tmp_path: Path, data: bytes, sha256: str | None = None, check: bool = False) -> tuple[int, str, Path]:
    """The piece `data` from a bundle directory to tmp_path/store/blobs/b; returns rc, output, dest."""
    bundle, store, state = tmp_path / "bundle", tmp_path / "store" / "blobs", tmp_path / "state"
    for d in (bundle, store, state / "verified"):
        d.mkdir(parents=True, exist_ok=True)
    (bundle / "piece").write_bytes(data)
    dest = store / "b"
    variables = {
        "bundle_sync_source_dir": str(bundle), "bundle_sync_state_dir": str(state), "bundle_sync_dest": str(dest),
        "bundle_sync_piece": {"src": "piece", "dest": "blobs/b", "size": len(data),
                              "sha256": sha256 or hashlib.sha256(data).hexdigest()},
        "bundle_sync_owner": pwd.getpwuid(os.getuid()).pw_name, "bundle_sync_group": grp.getgrgid(os.getgid()).gr_name,
    }
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(shipped_dir("playbooks") / "roles"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), *(["--check"] if check else []), str(tmp_path / "play.yml"),
                           "-e", f"@{tmp_path / 'vars.json'}"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr, dest


def test_a_verified_piece_is_installed_with_its_mode_and_marker(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    rc, out, dest = run_piece(tmp_path, data)
    assert rc == 0, out
    assert dest.read_bytes() == data
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    marker = tmp_path / "state" / "verified" / hashlib.sha256(data).hexdigest()
    assert marker.read_text() == f"{len(data)} {dest}\n"
    assert oct(marker.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["b"]  # no partial left beside it
    assert "changed=1" in out


def test_a_piece_whose_bytes_do_not_match_is_not_installed(tmp_path: Path) -> None:
    data = b"not the bundle's bytes\n" * 1000
    rc, out, dest = run_piece(tmp_path, data, sha256="0" * 64)
    assert rc == 2, out
    assert f"the copy on the host has sha256 {hashlib.sha256(data).hexdigest()}, the verified bundle says " \
           f"{'0' * 64}; nothing was installed from it" in out
    assert list(dest.parent.iterdir()) == []  # neither the piece nor its partial copy
    assert list((tmp_path / "state" / "verified").iterdir()) == []


def test_a_link_planted_at_the_partial_name_is_not_written_through(tmp_path: Path) -> None:
    data = b"blob" * 4096
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    store = tmp_path / "store" / "blobs"
    store.mkdir(parents=True)
    (store / f".coderig-partial-{hashlib.sha256(data).hexdigest()}").symlink_to(victim)
    rc, out, dest = run_piece(tmp_path, data)
    assert rc == 0, out
    assert victim.read_text() == "keep me\n"
    assert dest.read_bytes() == data and not dest.is_symlink()


def test_check_mode_says_changed_and_writes_nothing(tmp_path: Path) -> None:
    rc, out, dest = run_piece(tmp_path, b"x" * 100, check=True)
    assert rc == 0, out
    assert "changed=1" in out
    assert not dest.exists() and list((tmp_path / "state" / "verified").iterdir()) == []
