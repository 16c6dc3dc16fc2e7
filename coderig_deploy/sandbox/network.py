"""The lab's bridge and each host's network namespace and veth, via iproute2.

No route beyond the bridge: hosts get an address on the bridge's /24 and nothing
else (no default route, IPv6 router advertisements ignored), and the controller
does not forward (ip_forward is left as it is).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem

NETNS_DIR = Path("/run/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise EnvironmentProblem(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def link_exists(name: str) -> bool:
    return _ip("link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the controller has an address or a route in."""
    nets: list[ipaddress.IPv4Network] = []
    for entry in json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = entry.get("dst", "")
        if dst and dst != "default" and "/" in dst:
            nets.append(ipaddress.IPv4Network(dst, strict=False))
    for link in json.loads(_ip("-j", "-4", "addr", "show").stdout or "[]"):
        for addr in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    return nets


def ensure_bridge(name: str, address: ipaddress.IPv4Interface) -> None:
    """Create the bridge with the controller's address on it (idempotent)."""
    if not link_exists(name):
        _ip("link", "add", "name", name, "type", "bridge")
    current = json.loads(_ip("-j", "-4", "addr", "show", "dev", name).stdout or "[]")
    have = {f"{a['local']}/{a['prefixlen']}" for link in current for a in link.get("addr_info", [])}
    if str(address) not in have:
        _ip("addr", "add", str(address), "dev", name)
    _ip("link", "set", name, "up")


def delete_link(name: str) -> None:
    if link_exists(name):
        _ip("link", "del", name, check=False)


def create_host_network(
    netns: str, veth: str, bridge: str, address: ipaddress.IPv4Interface
) -> None:
    """A netns whose `eth0` is plugged into the bridge, addressed before boot."""
    if not netns_exists(netns):
        _ip("netns", "add", netns)
    peer = "crp-" + hashlib.sha256(veth.encode()).hexdigest()[:8]
    if not link_exists(veth):
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", netns)
        _ip("-n", netns, "link", "set", peer, "name", "eth0")
    subprocess.run(
        ["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_ra=0",
         "net.ipv6.conf.default.accept_ra=0"], check=False, capture_output=True)
    _ip("-n", netns, "addr", "replace", str(address), "dev", "eth0")
    _ip("-n", netns, "link", "set", "lo", "up")
    _ip("-n", netns, "link", "set", "eth0", "up")
    _ip("link", "set", veth, "master", bridge, "up")


def delete_host_network(netns: str, veth: str) -> None:
    """Remove the netns (which takes its end of the veth) and the controller end."""
    if netns_exists(netns):
        _ip("netns", "del", netns, check=False)
    delete_link(veth)


def enable_forwarding(netns: str) -> None:
    """ip_forward=1 inside a host's namespace only (Docker's bridge needs it; the
    controller's own setting is untouched, so nothing routes beyond the lab bridge)."""
    proc = subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"enabling forwarding in {netns} failed: {proc.stderr.strip()}")
