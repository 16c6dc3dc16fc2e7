"""Render the lab as an Ansible inventory (pure: state in, YAML text out)."""

from __future__ import annotations

from pathlib import Path

import yaml

from coderig_deploy.sandbox.state import LabState


def ssh_common_args(known_hosts: Path) -> str:
    """OpenSSH options that make Ansible check host keys against the lab's file."""
    return (f"-o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes")


def render(state: LabState, key: Path, known_hosts: Path) -> str:
    """An inventory with every host under `sandbox`, grouped by simulated GPU too."""
    hosts: dict[str, dict[str, object]] = {}
    by_gpu: dict[str, dict[str, None]] = {}
    for host in sorted(state.hosts.values(), key=lambda h: h.slot):
        hosts[host.name] = {
            "ansible_host": host.ip,
            "coderig_sandbox_gpu": host.gpu.slug if host.gpu.count else None,
            "coderig_sandbox_gpu_count": host.gpu.count,
        }
        group = f"gpu_{host.gpu.slug.replace('-', '_')}" if host.gpu.count and host.gpu.slug \
            else "gpu_none"
        by_gpu.setdefault(group, {})[host.name] = None
    document = {"all": {
        "vars": {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": ssh_common_args(known_hosts),
            "ansible_python_interpreter": "/usr/bin/python3",
        },
        "children": {
            "sandbox": {"hosts": hosts},
            **{group: {"hosts": members} for group, members in sorted(by_gpu.items())},
        },
    }}
    return yaml.safe_dump(document, sort_keys=False)
