"""Forks default to one per host, bounded by the controller's CPUs; the rendered
ansible.cfg carries them with pipelining and SSH connection reuse, as Ansible reads it."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coderig_deploy import forks
from coderig_deploy.cli import app
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import spec_for
from coderig_deploy.render import render_project
from coderig_deploy.targets import TargetOptions, from_argument, resolve_targets

ANSIBLE_CONFIG = str(Path(sys.executable).parent / "ansible-config")


@pytest.mark.parametrize(("hosts", "cpus", "want"), [
    (1, 2, 1),      # never more workers than hosts
    (5, 2, 5),
    (20, 2, 20),    # the 20-desk fleet on a 2-CPU controller: one fork per host
    (50, 2, 20),    # 10 per CPU
    (50, 1, 10),
    (3, 1, 3),
    (8, 0, 5),      # a bound never under Ansible's own default of 5
    (500, 64, 200),  # and never over what --forks accepts
])
def test_auto_forks(hosts: int, cpus: int, want: int) -> None:
    assert forks.auto_forks(hosts, cpus) == want


def test_controller_cpus_follow_the_affinity_mask() -> None:
    assert forks.controller_cpus() == len(os.sched_getaffinity(0))


def _options(hosts: int, given: int | None) -> int:
    profile = load_profile("budget-4070")
    names = [f"deploy@ws{n}.lab.example" for n in range(1, hosts + 1)]
    _, options = resolve_targets(profile, TargetOptions(hosts=names, forks=given))
    return options.forks


def test_forks_default_to_the_hosts_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forks, "controller_cpus", lambda: 2)
    assert _options(3, None) == 3
    assert _options(25, None) == 20
    assert _options(25, 7) == 7  # --forks wins


def _cfg(forks_value: int) -> tuple[str, configparser.ConfigParser]:
    profile = load_profile("budget-4070")
    spec = spec_for(profile, [from_argument("deploy@ws1.lab.example")]).model_copy(update={"forks": forks_value})
    text = render_project(spec)["ansible.cfg"].decode()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return text, parser


def test_rendered_cfg_holds_forks_pipelining_and_connection_reuse() -> None:
    _, cfg = _cfg(17)
    assert cfg.getint("defaults", "forks") == 17
    assert cfg.getboolean("ssh_connection", "pipelining") is True
    args = cfg.get("ssh_connection", "ssh_args").split()
    assert "ControlMaster=auto" in args and "StrictHostKeyChecking=yes" in args
    persist = [a for a in args if a.startswith("ControlPersist=")]
    assert persist and persist[0] != "ControlPersist=no"


def test_ansible_reads_the_rendered_settings(tmp_path: Path) -> None:
    """ansible-config, Ansible's own reader, sees what the template meant."""
    text, _ = _cfg(17)
    (tmp_path / "ansible.cfg").write_text(text)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg")}
    proc = subprocess.run([ANSIBLE_CONFIG, "dump", "--only-changed", "-t", "all"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    sections = _sections(proc.stdout)
    assert any(line.startswith("DEFAULT_FORKS(") and line.endswith("= 17") for line in sections["base"]), proc.stdout
    ssh = sections["ssh"]
    assert any(line.startswith("pipelining(") and line.endswith("= True") for line in ssh), proc.stdout
    assert any(line.startswith("ssh_args(") and "ControlPersist=" in line for line in ssh), proc.stdout


def _sections(dump: str) -> dict[str, list[str]]:
    """ansible-config dump's text: base settings first, then `plugin:` headers."""
    sections: dict[str, list[str]] = {"base": []}
    current = "base"
    for line in dump.splitlines():
        if line.endswith(":") and "(" not in line:
            current = line[:-1]
            sections[current] = []
        elif line and not line.startswith("_"):
            sections[current].append(line)
    return sections


def test_render_without_forks_gives_one_per_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forks, "controller_cpus", lambda: 2)
    out = tmp_path / "project"
    result = CliRunner().invoke(app, ["render", "--profile", "budget-4070", "-o", str(out),
                                      "deploy@ws1.lab.example", "deploy@ws2.lab.example", "deploy@ws3.lab.example"])
    assert result.exit_code == 0, result.output
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(out / "ansible.cfg")
    assert cfg.getint("defaults", "forks") == 3
