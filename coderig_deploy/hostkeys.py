"""Host keys on the Ansible path: strict by default, accept-new only when asked, and a
reason a person can act on when ssh refuses a host.

OpenSSH honours the first value it sees for an option, and Ansible puts ansible.cfg's
ssh_args first, so StrictHostKeyChecking lives there (rendered `yes`). The runner
also sets ANSIBLE_HOST_KEY_CHECKING=True: ansible-runner would otherwise set it
False, and Ansible would add `-o StrictHostKeyChecking=no`. `--accept-new-host-keys`
swaps `yes` for `accept-new` in the run's ssh_args: a new host's key is recorded in
the known_hosts file in use, a changed key is still refused.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import hashlib
import hmac
from pathlib import Path

from coderig_deploy.project import TargetHost

STRICT = "StrictHostKeyChecking=yes"
ACCEPT_NEW = "StrictHostKeyChecking=accept-new"
_CHANGED = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "has changed and you have requested strict checking")
_UNKNOWN = ("host key is known for", "Host key verification failed")


def ssh_args(ansible_cfg: str, accept_new: bool) -> str:
    """The project's ssh_args for this run; never without a strict host key setting."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ansible_cfg)
    args = parser.get("ssh_connection", "ssh_args", fallback="")
    if "StrictHostKeyChecking=no" in args or STRICT not in args:
        raise ValueError(f"ansible.cfg ssh_args must hold {STRICT}, not: {args!r}")
    return args.replace(STRICT, ACCEPT_NEW) if accept_new else args


def known_hosts_file(host: TargetHost) -> Path:
    """The known_hosts file ssh checks (and accept-new writes) for `host`."""
    return Path(host.known_hosts) if host.known_hosts else Path.home() / ".ssh" / "known_hosts"


def snapshot(hosts: list[TargetHost]) -> dict[Path, set[str]]:
    """The lines of each known_hosts file the run's SSH hosts use."""
    files = {known_hosts_file(h) for h in hosts if h.connection == "ssh"}
    return {f: set(f.read_text(errors="replace").splitlines()) if f.is_file() else set() for f in files}


def recorded(before: dict[Path, set[str]], hosts: list[TargetHost]) -> list[str]:
    """Keys added since `before` (by accept-new), as 'FILE: host keytype' lines; hashed
    entries (HashKnownHosts) are named by the run's host they match."""
    names = [n for h in hosts for n in _ssh_names(h)]
    found = []
    for path, old in sorted(before.items()):
        lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
        for line in lines:
            fields = line.split()
            if line not in old and len(fields) >= 2 and not line.startswith("#"):
                found.append(f"{path}: {_unhashed(fields[0], names)} {fields[1]}")
    return found


def _ssh_names(host: TargetHost) -> list[str]:
    """How ssh writes `host` into known_hosts ([addr]:port off port 22)."""
    address = host.address or host.name
    return [f"[{address}]:{host.port}" if host.port and host.port != 22 else address]


def _unhashed(field: str, names: list[str]) -> str:
    """A hashed known_hosts name (|1|salt|hash) as the candidate it matches, else as is."""
    if not field.startswith("|1|"):
        return field
    try:
        salt, digest = (base64.b64decode(x) for x in field[3:].split("|", 1))
    except (ValueError, binascii.Error):
        return field
    return next((n for n in names if hmac.compare_digest(
        hmac.new(salt, n.encode(), hashlib.sha1).digest(), digest)), field)


def explain(reason: str, host: TargetHost) -> str:
    """An unreachable host's reason, named plainly when ssh refused its host key."""
    address = host.address or host.name
    known = known_hosts_file(host)
    port = f"-p {host.port} " if host.port and host.port != 22 else ""
    if any(mark in reason for mark in _CHANGED):
        return (f"host key for {address} does not match known_hosts {known}: refused (a reinstalled host, "
                f"or someone in between); if the host was reinstalled, check its new key's fingerprint, "
                f"then `ssh-keygen -R {address} -f {known}` and add the new key")
    if any(mark in reason for mark in _UNKNOWN):
        return (f"unknown host {address}: its key is not in known_hosts {known}; check the fingerprint and "
                f"add it with `ssh-keyscan {port}{address} >> {known}`, or rerun with "
                f"--accept-new-host-keys to record it on first connect")
    return reason
