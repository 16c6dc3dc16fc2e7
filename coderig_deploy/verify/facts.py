"""Pure parsers of what the verify checks read off a host (fixture-tested)."""

from __future__ import annotations

import ipaddress
import re
import shlex

# Proprietary: "Kernel Module  580.65.06  Sun ..."; open: "Open Kernel Module for x86_64  565.57.01"
_NVRM = re.compile(r"NVRM version:.*?Kernel Module(?: for \S+)?\s+(\d+)\.(\d+)(?:\.(\d+))?")
_OLLAMA = re.compile(r"version is (\S+)")


def driver_version(proc_text: str) -> str | None:
    """The driver version in /proc/driver/nvidia/version (both kernel module flavours)."""
    match = _NVRM.search(proc_text)
    return None if match is None else ".".join(g for g in match.groups() if g is not None)


def ollama_version(text: str) -> str | None:
    """`ollama --version` output -> "0.33.0" (ignores a "Warning: client version" line)."""
    match = _OLLAMA.search(text)
    return match.group(1) if match else None


def systemd_environment(value: str) -> dict[str, str]:
    """`systemctl show -p Environment --value` -> {NAME: value} (systemd quotes with spaces)."""
    env = {}
    for item in shlex.split(value):
        name, sep, val = item.partition("=")
        if sep:
            env[name] = val
    return env


def _addr(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    addr = ipaddress.IPv6Address(words)
    return str(addr.ipv4_mapped) if addr.ipv4_mapped else str(addr)


def listening(proc_net_tcp: str) -> set[tuple[str, int]]:
    """(address, port) of every LISTEN socket in /proc/net/tcp or tcp6 text."""
    found = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            hex_addr, hex_port = fields[1].split(":")
            found.add((_addr(hex_addr), int(hex_port, 16)))
    return found
