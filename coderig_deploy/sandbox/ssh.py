"""Talk to sandbox hosts with OpenSSH, host keys checked against the lab's known_hosts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from coderig_deploy.errors import EnvironmentProblem


def generate_key(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at `path` unless it exists; return the public line."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise EnvironmentProblem(f"ssh-keygen for {path} failed: {proc.stderr.strip()}")
    return path.with_suffix(".pub").read_text().strip()


def known_hosts_line(names: list[str], public_key: str) -> str:
    """A known_hosts entry for `names` (hostname, IP) with the key type and base64."""
    key_type, key_b64 = public_key.split()[:2]
    return f"{','.join(names)} {key_type} {key_b64}"


def ssh_argv(ip: str, key: Path, known_hosts: Path, connect_timeout: int = 3) -> list[str]:
    """The `ssh` command line for root on `ip`, never trusting an unknown key."""
    return [
        "ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes", "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "LogLevel=ERROR", f"root@{ip}",
    ]


def run(
    ip: str, key: Path, known_hosts: Path, command: str, timeout: float = 60.0,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `command` on the host; the result carries returncode, stdout and stderr."""
    return subprocess.run(
        [*ssh_argv(ip, key, known_hosts), command], input=stdin, capture_output=True,
        text=True, timeout=timeout, check=False)


def paramiko_client(ip: str, key: Path, known_hosts: Path, timeout: float = 10.0) -> Any:
    """A connected paramiko client for root on `ip` that rejects unknown host keys."""
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(ip, username="root", key_filename=str(key), timeout=timeout,
                   allow_agent=False, look_for_keys=False)
    return client
