"""The ollama role's model-store guard, run by real ansible-playbook against this machine.

The guard (roles/ollama/tasks/store_guard.yml) only reads (stat, realpath, find) and
asserts, so it runs here with a local connection on scratch directories; the
service user is `nobody`, which exists everywhere and owns nothing in tmp_path.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

GUARD = Path(__file__).parents[3] / "playbooks" / "roles" / "ollama" / "tasks" / "store_guard.yml"
PLAYBOOK = """\
- name: Run the model-store guard.
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check the store.
      ansible.builtin.import_tasks: {guard}
"""


def run_guard(tmp_path: Path, store: Path) -> subprocess.CompletedProcess[str]:
    book = tmp_path / "guard.yml"
    book.write_text(PLAYBOOK.format(guard=GUARD))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(bin_dir / "ansible-playbook"), "-i", "localhost,", str(book),
         "-e", f"ollama_models_dir={store}", "-e", "ollama_user=nobody",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, timeout=300, env=env)


def _nobody_owns(path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    os.chown(path, nobody.pw_uid, nobody.pw_gid)


def test_guard_cases(tmp_path: Path) -> None:
    """One test, several stores, to pay Ansible's start-up once per case only."""
    missing = tmp_path / "missing" / "models"
    empty = tmp_path / "empty"
    empty.mkdir()
    owned = tmp_path / "owned"
    owned.mkdir()
    (owned / "blobs").mkdir()
    _nobody_owns(owned)
    for store in (missing, empty, owned):
        r = run_guard(tmp_path, store)
        assert r.returncode == 0, (store, r.stdout[-2000:])
        assert "failed=0" in r.stdout

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / ".hidden").write_text("a user's file")
    r = run_guard(tmp_path, foreign)
    assert r.returncode == 2
    assert f"{foreign} already holds 1 entries and belongs to root, not nobody" in r.stdout
    assert (foreign / ".hidden").read_text() == "a user's file" and foreign.stat().st_uid == 0


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_guard_refuses_links_and_files(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "etc-like"
    target.mkdir()
    store = tmp_path / "store"
    if kind == "symlink":
        store.symlink_to(target)
        message = f"{store} resolves to {target} (a symbolic link on the path)"
    else:
        store.write_text("")
        message = f"{store} exists and is not a directory"
    r = run_guard(tmp_path, store)
    assert r.returncode == 2
    assert message in r.stdout
