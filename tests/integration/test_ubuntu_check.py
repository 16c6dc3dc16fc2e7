"""The driver role's Ubuntu 24.04 paths in `--check` (issue 13: "Ubuntu paths are covered by
tests on the rendered variables and by --check runs").

The sandbox hosts are Debian 12, so one host's gathered facts are overridden to Ubuntu
24.04 (a test-only module that returns ansible_facts, run after fact gathering); the rendered
project's nvidia_driver role then runs in check mode through ansible-playbook with the
project's own ansible.cfg and inventory. The role must take the Ubuntu package names,
pins and NVIDIA's ubuntu2404 repository path, and change nothing on the host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.sandbox import HostSpec, Lab

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
HOST = "ubu1"
# apt's own binary cache (/var/cache/apt) is rebuilt when apt reads the lists: not a host change.
SNAPSHOT = ("md5sum /var/lib/dpkg/status; ls -la --time-style=full-iso /etc/apt /etc/apt/preferences.d "
            "/etc/apt/sources.list.d /etc/modprobe.d; ls /var/cache/coderig 2>&1")
UBUNTU_FACTS = '''#!/usr/bin/python3
# Test only: present the host as Ubuntu 24.04 to the roles (ansible_facts), nothing else.
from ansible.module_utils.basic import AnsibleModule

AnsibleModule(argument_spec={}, supports_check_mode=True).exit_json(changed=False, ansible_facts={
    "distribution": "Ubuntu", "distribution_version": "24.04", "distribution_major_version": "24",
    "distribution_release": "noble", "lsb": {"id": "Ubuntu", "release": "24.04", "codename": "noble"}})
'''
PLAY = """\
- name: The driver role on a host presented as Ubuntu 24.04
  hosts: coderig
  gather_facts: true
  tasks:
    - name: Present the host as Ubuntu 24.04
      coderig_test_ubuntu_facts:
      check_mode: false

    - name: Run the driver role
      ansible.builtin.import_role:
        name: nvidia_driver

    - name: Record what the role would do
      ansible.builtin.copy:
        content: "{{ {'summary': nvidia_driver_summary, 'cuda_distro': nvidia_driver_cuda_distro,
                      'distro_branches': nvidia_driver_distro_branches,
                      'pin_packages': nvidia_driver_apt_pin_packages | default(None),
                      'pref': lookup('ansible.builtin.template',
                                     'roles/nvidia_driver/templates/coderig-nvidia-driver.pref.j2'),
                      'os': ansible_facts['distribution'] ~ ' ' ~ ansible_facts['distribution_version']}
                     | to_json }}"
        dest: "{{ playbook_dir }}/result-{{ inventory_hostname }}.json"
        mode: "0644"
      delegate_to: localhost
      check_mode: false
"""


# An index (no .debs: --check downloads nothing) standing in for Ubuntu noble's restricted
# archive, with the names data/driver_branches.tsv gives for branch 580 (UBUPKG noble).
UBUNTU_INDEX = "".join(
    f"Package: {name}\nVersion: 580.95.05-0ubuntu0.24.04.2\nArchitecture: amd64\nMaintainer: test\n"
    f"Filename: ./{name}.deb\nSize: 1\nDescription: stand-in for Ubuntu's package\n\n"
    for name in ("nvidia-driver-580-open", "linux-modules-nvidia-580-open-generic"))
STANDIN = "/var/lib/coderig-test-ubuntu"
# The driver packages held to the branch (Ubuntu's and NVIDIA's names alike); the signed module
# packages are versioned by kernel ABI, not by branch, so they are not pinned to 580.*.
PIN_LINE = "Package: nvidia-* libnvidia-* cuda-drivers* libcuda1* libxnvctrl* xserver-xorg-video-nvidia*\n"


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    lab = sandbox_lab([HostSpec(name=HOST, gpu="rtx-4090", count=1, driver_installed=False)], name="ubuntu")
    lab.ssh(HOST, f"mkdir -p {STANDIN} && cat > {STANDIN}/Packages", stdin=UBUNTU_INDEX)
    lab.ssh(HOST, f"echo 'deb [trusted=yes] file:{STANDIN} ./' > /etc/apt/sources.list.d/coderig-test-ubuntu.list"
                  " && apt-get update -qq -o Dir::Etc::sourcelist=sources.list.d/coderig-test-ubuntu.list"
                  " -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0", timeout=120)
    return lab


def check_run(lab: Lab, tmp_path: Path, driver: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Render midrange-4090 with `driver` for the lab, run the role in --check; the run and its record."""
    profiles, project = tmp_path / "profiles", tmp_path / "project"
    profiles.mkdir()
    (profiles / "ubu.yaml").write_text(f"extends: midrange-4090\nname: ubu\ndriver:\n{driver}")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home), "ANSIBLE_NOCOLOR": "1"}
    subprocess.run([str(BIN / "coderig-deploy"), "render", "--profile", "ubu", "--profiles-dir", str(profiles),
                    "--sandbox", "-o", str(project)], env=env, check=True, capture_output=True, timeout=300)
    (project / "library").mkdir()
    (project / "library" / "coderig_test_ubuntu_facts.py").write_text(UBUNTU_FACTS)
    (project / "ubuntu-check.yml").write_text(PLAY)
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--check", "--diff", "ubuntu-check.yml"], cwd=project,
                          env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc, json.loads((project / f"result-{HOST}.json").read_text())


def _task(output: str, name: str) -> str:
    """The lines ansible-playbook printed for the role's first task whose name starts with `name`."""
    assert f"TASK [nvidia_driver : {name}" in output, output
    return output.split(f"TASK [nvidia_driver : {name}", 1)[1].split("TASK [", 1)[0]


def test_nvidia_s_repository_on_ubuntu_2404_branch_590(lab: Lab, tmp_path: Path) -> None:
    """From 590 NVIDIA's packages are branchless, locked by nvidia-driver-pinning-590."""
    before = lab.ssh(HOST, SNAPSHOT).stdout
    proc, record = check_run(lab, tmp_path, "  source: cuda-repo\n  branch: 590\n")
    assert record["os"] == "Ubuntu 24.04"
    assert record["cuda_distro"] == "ubuntu2404"
    assert record["summary"]["state"] == "would-install"
    assert record["summary"]["packages"] == ["nvidia-driver-pinning-590", "nvidia-open"]
    assert "Pin: version 590.*" in record["pref"] and PIN_LINE in record["pref"]
    assert "+Pin: version 590.*" in proc.stdout, proc.stdout  # the pin file as --check --diff shows it
    assert "skipping: [ubu1]" in _task(proc.stdout, "Ensure contrib, the running kernel's headers and dkms")
    assert "coderig-debian-contrib" not in proc.stdout  # Debian's contrib is no Ubuntu step
    assert lab.ssh(HOST, SNAPSHOT).stdout == before


def test_ubuntu_s_archive_with_its_signed_modules_branch_580(lab: Lab, tmp_path: Path) -> None:
    before = lab.ssh(HOST, SNAPSHOT).stdout
    proc, record = check_run(lab, tmp_path, "  source: distro\n  branch: 580\n")
    assert record["os"] == "Ubuntu 24.04"
    assert record["distro_branches"] == ["535", "550", "580"]
    assert record["summary"]["packages"] == ["nvidia-driver-580-open", "linux-modules-nvidia-580-open-generic"]
    assert "Pin: version 580.*" in record["pref"] and PIN_LINE in record["pref"]
    assert "+Pin: version 580.*" in proc.stdout, proc.stdout
    # apt resolved the Ubuntu names (in check mode: nothing downloaded or installed)
    assert "changed: [ubu1]" in _task(proc.stdout, "Ensure the distribution's driver packages are installed.")
    assert "coderig-debian-contrib" not in proc.stdout
    assert lab.ssh(HOST, SNAPSHOT).stdout == before
