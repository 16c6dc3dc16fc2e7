"""container_runtime's apt source, evaluated by ansible-playbook itself: a repository of the
run's own (bundle, lab, site mirror) is the only index read; without one the toolkit comes
from NVIDIA's repository, its key trusted only at the pinned fingerprint."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from coderig_deploy.resources import shipped_dir

BIN = Path(sys.executable).parent
ROLE = shipped_dir("playbooks") / "roles" / "container_runtime"
NAMES = ("container_runtime_source_only", "container_runtime_source_url", "container_runtime_source_key_url",
         "container_runtime_source_key_fingerprint")
PLAY = f"""\
- name: Evaluate the apt source
  hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: [min]
  vars_files: ["{ROLE}/defaults/main.yml", "{ROLE}/vars/main.yml"]
  tasks:
    - name: Write the source and its rendered file
      ansible.builtin.copy:
        dest: "{{{{ out }}}}"
        mode: "0600"
        content: "{{{{ {{'vars': {{{', '.join(f"'{n}': {n}" for n in NAMES)}}},
                      'file': lookup('ansible.builtin.template', '{ROLE}/templates/coderig-containers.sources.j2')}}
                    | to_json }}}}"
"""


def evaluate(tmp_path: Path, **extra: str) -> dict[str, Any]:
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "extra.json").write_text(json.dumps({**extra, "out": str(tmp_path / "out.json")}))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), str(tmp_path / "play.yml"), "-e",
                           f"@{tmp_path / 'extra.json'}"], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads((tmp_path / "out.json").read_text()))


def test_without_a_repository_the_toolkit_comes_from_nvidia_at_the_pinned_key(tmp_path: Path) -> None:
    arch = "arm64" if platform.machine() == "aarch64" else "amd64"
    got = evaluate(tmp_path)
    assert got["vars"] == {
        "container_runtime_source_only": False,
        "container_runtime_source_url": f"https://nvidia.github.io/libnvidia-container/stable/deb/{arch}",
        "container_runtime_source_key_url": "https://nvidia.github.io/libnvidia-container/gpgkey",
        "container_runtime_source_key_fingerprint": "C95B321B61E88C1809C4F759DDCAE044F796ECB0"}
    lines = got["file"].splitlines()
    assert lines[0].endswith(": the NVIDIA Container Toolkit.")
    assert lines[1:] == ["Types: deb", f"URIs: https://nvidia.github.io/libnvidia-container/stable/deb/{arch}",
                         "Suites: ./", "Signed-By: /etc/apt/keyrings/coderig-containers.asc"]


def test_a_repository_of_the_run_is_the_only_source_with_its_own_key(tmp_path: Path) -> None:
    got = evaluate(tmp_path, container_runtime_repo_url="http://10.0.0.1:8080/apt/containers",
                   container_runtime_repo_key_fingerprint="0123456789ABCDEF0123456789ABCDEF01234567")
    assert got["vars"] == {
        "container_runtime_source_only": True,
        "container_runtime_source_url": "http://10.0.0.1:8080/apt/containers",
        "container_runtime_source_key_url": "http://10.0.0.1:8080/apt/containers/key.asc",
        "container_runtime_source_key_fingerprint": "0123456789ABCDEF0123456789ABCDEF01234567"}
    assert "URIs: http://10.0.0.1:8080/apt/containers" in got["file"].splitlines()
    assert "Docker Engine and the NVIDIA Container Toolkit." in got["file"]
