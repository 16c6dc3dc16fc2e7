"""Remove hosts and labs: every step checks what exists, so it is safe to repeat
and works from the state file alone after a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

from coderig_deploy.sandbox import hosts, network, processes, state
from coderig_deploy.sandbox.state import HostState, LabState

# Everything a lab writes in its home ("services" belongs to sandbox/services.py);
# `down` removes these and nothing else (the home may be a directory the user also
# uses). The lock file stays.
LAB_FILES = ("hosts", "services", "id_ed25519", "id_ed25519.pub", "known_hosts",
             "inventory.yml", state.STATE_FILE, state.STATE_FILE.replace(".json", ".tmp"))


def destroy_host(home: Path, host: HostState) -> None:
    """Halt the host, then remove its processes, mount, cgroups, files and network."""
    hosts.stop(host, hosts.HostPaths(home, host.name))
    network.delete_host_network(host.netns, host.veth)


def destroy_lab(home: Path, current: LabState) -> None:
    """After its hosts: stop the lab's services, delete its bridge and its files."""
    for service in current.services.values():
        processes.terminate(service.pid, service.started)
    network.delete_link(current.bridge)
    for name in LAB_FILES:
        entry = home / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
