"""Pure naming rules: a lab's id, bridge, subnet, and its hosts' link names.

Everything derives from the lab's state directory, so two labs on one machine (a
test run and a developer's lab) get different bridges and subnets by construction.
Names of network links are limited to 15 characters by the kernel.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

# 10.80.0.0 - 10.95.255.0: 4096 /24 subnets, away from common LAN and VPN ranges.
SUBNET_FIRST_OCTET = 10
SUBNET_SECOND_BASE = 80
SUBNET_SECOND_SPAN = 16
FIRST_HOST_OCTET = 10
MAX_HOSTS = 200
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def lab_id(state_dir: str) -> str:
    """Six hex digits naming a lab on this machine."""
    return hashlib.sha256(state_dir.encode()).hexdigest()[:6]


def bridge_name(lab: str) -> str:
    """The lab's bridge, e.g. ``crb-1a2b3c``."""
    return f"crb-{lab}"


def subnet_candidates(lab: str) -> list[ipaddress.IPv4Network]:
    """Every /24 the lab may use, its preferred one first (the caller skips used ones)."""
    total = SUBNET_SECOND_SPAN * 256
    start = int(lab, 16) % total
    nets = []
    for step in range(total):
        slot = (start + step) % total
        second, third = SUBNET_SECOND_BASE + slot // 256, slot % 256
        nets.append(ipaddress.IPv4Network(f"{SUBNET_FIRST_OCTET}.{second}.{third}.0/24"))
    return nets


def bridge_address(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The controller's address on the bridge (.1)."""
    return subnet.network_address + 1


def host_address(subnet: ipaddress.IPv4Network, slot: int) -> ipaddress.IPv4Address:
    """Host number `slot` (0-based) lives at .10, .11, ..."""
    if not 0 <= slot < MAX_HOSTS:
        raise ValueError(f"host slot {slot} outside 0..{MAX_HOSTS - 1}")
    return subnet.network_address + FIRST_HOST_OCTET + slot


def netns_name(lab: str, host: str) -> str:
    """The host's network namespace (a file under /run/netns, no length limit)."""
    return f"coderig-{lab}-{host}"


def veth_name(lab: str, host: str) -> str:
    """The controller end of the host's veth, e.g. ``crv-9f8e7d6c`` (<= 15 chars)."""
    return "crv-" + hashlib.sha256(f"{lab}/{host}".encode()).hexdigest()[:8]


def cgroup_name(lab: str, host: str) -> str:
    """The host's cgroup directory below ``coderig/`` in each hierarchy."""
    return f"{lab}-{host}"


def host_names(prefix: str, count: int, taken: set[str]) -> list[str]:
    """`count` new names ``<prefix>1``, ``<prefix>2``, ... skipping names in use."""
    names: list[str] = []
    number = 1
    while len(names) < count:
        candidate = f"{prefix}{number}"
        if candidate not in taken:
            names.append(candidate)
        number += 1
    return names


def valid_host_name(name: str) -> bool:
    """A lowercase DNS label short enough for a hostname and our link names."""
    return bool(HOST_NAME.match(name))
