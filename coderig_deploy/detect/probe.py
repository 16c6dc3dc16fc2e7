"""Read a host: one shell script over SSH (paramiko, host key checked) or locally,
its output split into sections that `parse` reads."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.detect.parse import SMI_FIELDS

DEFAULT_MODELS_DIR = "/usr/share/ollama/.ollama/models"
MARK = "=== coderig-detect "
# Each section's command; stderr is kept where it carries the answer (nvidia-smi -L's
# "Unable to determine the device handle" lines). Every command is optional on the host.
SCRIPT = f"""\
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
echo '{MARK}nvidia-smi'
nvidia-smi --query-gpu={','.join(SMI_FIELDS)} --format=csv,noheader,nounits 2>&1
echo '{MARK}nvidia-smi-list'
nvidia-smi -L 2>&1
echo '{MARK}lspci'
lspci -n 2>/dev/null
echo '{MARK}sysfs'
for d in /sys/bus/pci/devices/*; do
  [ -r "$d/vendor" ] && echo "${{d##*/}} $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"
done 2>/dev/null
echo '{MARK}meminfo'
cat /proc/meminfo 2>/dev/null
echo '{MARK}os-release'
cat /etc/os-release 2>/dev/null
echo '{MARK}driver'
cat /proc/driver/nvidia/version 2>/dev/null
echo '{MARK}models-dir'
dir=$(systemctl show ollama -p Environment --value 2>/dev/null | tr ' ' '\\n' | sed -n 's/^OLLAMA_MODELS=//p')
dir=${{dir:-{DEFAULT_MODELS_DIR}}}
echo "$dir"
echo '{MARK}df'
while [ ! -d "$dir" ] && [ "$dir" != / ]; do dir=$(dirname "$dir"); done
df -Pk "$dir" 2>/dev/null
echo '{MARK}ollama-version'
command -v ollama >/dev/null && ollama --version 2>&1
echo '{MARK}ollama-tags'
python3 -c 'import urllib.request as u; print(u.urlopen("http://127.0.0.1:11434/api/tags", timeout=3).read().decode())' 2>/dev/null
echo '{MARK}end'
"""


@dataclass(frozen=True)
class ProbeTarget:
    """How to reach one host: SSH (address, user, key, known_hosts) or this machine."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    key_file: Path | None = None
    known_hosts: Path | None = None
    local: bool = False
    become: bool = False


def sections(output: str) -> dict[str, str]:
    """The script's output by section name."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(MARK):
            current = found.setdefault(line[len(MARK):].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def read_host(target: ProbeTarget, timeout_s: float = 30.0) -> dict[str, str]:
    """Run the script on the host; raises EnvironmentProblem when it cannot be reached."""
    command = ["sudo", "-n", "sh", "-s"] if target.become else ["sh", "-s"]
    if target.local:
        proc = subprocess.run(command, input=SCRIPT, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        return sections(proc.stdout)
    from coderig_deploy.verify.runner import Target, ssh_client

    client = ssh_client(Target(target.name, target.address, target.user, target.port,
                               target.key_file, target.known_hosts), timeout_s)
    try:
        stdin, stdout, _ = client.exec_command(" ".join(command), timeout=timeout_s)
        stdin.write(SCRIPT)
        stdin.channel.shutdown_write()
        return sections(stdout.read().decode(errors="replace"))
    finally:
        client.close()
