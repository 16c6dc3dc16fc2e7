"""What `validate --airgapped` reads on a host, and the program that reads it.

`PROBE` runs on the host (python3, stdlib) and prints one JSON document:
its routing tables, one connection attempt per public address, the process
environment of the Ollama service (or, with ollama.runtime docker, of the Ollama
container's main process, read from the host's /proc) and /api/tags. The connection attempt never sends
a packet off the host: a UDP `connect()` only looks the route up; the TCP attempt
is made only where that lookup found no route, so it fails locally with
"Network is unreachable". A host that does have a route is reported as such,
and nothing is sent.
"""

from __future__ import annotations

PUBLIC_ADDRESSES = (("1.1.1.1", 443), ("9.9.9.9", 443), ("2606:4700:4700::1111", 443))
CONNECT_TIMEOUT_S = 3

PROBE = r'''
import errno, json, socket, subprocess, sys, urllib.request
api_url, timeout, targets = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
container = sys.argv[4] if len(sys.argv) > 4 else "ollama"
def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError as exc:
        return None
def attempt(address, port):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    result = {"address": address, "port": port}
    probe = socket.socket(family, socket.SOCK_DGRAM)
    try:
        probe.connect((address, port))          # route lookup only: UDP connect sends nothing
        result["route"] = True
        result["source"] = probe.getsockname()[0]
        return result
    except OSError as exc:
        result["route"] = False
    finally:
        probe.close()
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((address, port))
        result["connected"] = True
    except OSError as exc:
        result["connected"] = False
        result["errno"] = exc.errno or 0
        result["error"] = exc.strerror or str(exc)
    finally:
        sock.close()
    return result
pid = subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", "ollama"], capture_output=True,
                     text=True).stdout.strip()
runtime = "service"
if pid in ("", "0"):  # ollama.runtime docker: the container's main process (its environment is the container's)
    try:
        pid = subprocess.run(["docker", "inspect", "--format", "{{.State.Pid}}", container], capture_output=True,
                             text=True, timeout=60).stdout.strip()
        runtime = "container"
    except (OSError, subprocess.SubprocessError):
        pid = ""
environ = read(f"/proc/{pid}/environ") if pid not in ("", "0") else None
try:
    tags = json.loads(urllib.request.urlopen(api_url + "/api/tags", timeout=10).read())
    tags_error = None
except Exception as exc:
    tags, tags_error = None, str(exc)
print(json.dumps({
    "route4": read("/proc/net/route"), "route6": read("/proc/net/ipv6_route"),
    "attempts": [attempt(a, p) for a, p in targets],
    "ollama_pid": pid, "ollama_runtime": runtime if environ is not None else None,
    "ollama_environ": environ.split("\0") if environ is not None else None,
    "tags": tags, "tags_error": tags_error,
}))
'''

_RTF_UP, _RTF_REJECT = 0x0001, 0x0200


def default_routes_v4(text: str | None) -> list[str]:
    """Default routes in /proc/net/route text, as "via <gateway> dev <iface>"."""
    found = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000" \
                and int(fields[3], 16) & _RTF_UP:
            gateway = ".".join(str(b) for b in bytes.fromhex(fields[2])[::-1])
            found.append(f"via {gateway} dev {fields[0]}")
    return found


def default_routes_v6(text: str | None) -> list[str]:
    """Default routes in /proc/net/ipv6_route text (the kernel's unreachable ::/0 on lo excluded)."""
    found = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00":
            flags = int(fields[8], 16)
            if flags & _RTF_UP and not flags & _RTF_REJECT:
                found.append(f"via {_ipv6(fields[4])} dev {fields[9]}")
    return found


def _ipv6(hex32: str) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(bytes.fromhex(hex32)))


def environment(entries: list[str] | None) -> dict[str, str]:
    """NAME=value entries of /proc/<pid>/environ as a dict."""
    env = {}
    for entry in entries or []:
        name, sep, value = entry.partition("=")
        if sep:
            env[name] = value
    return env
