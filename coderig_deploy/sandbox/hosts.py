"""One sandbox host's lifecycle on the controller: overlay, identity, boot, stop.

A host is `systemd-nspawn -b` over an overlay (shared read-only rootfs + its own
upper dir) inside its own network namespace and cgroup. Library code: it raises,
never prints.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox import cgroups
from coderig_deploy.sandbox.state import HostState

SSHD_DROPIN = """\
# Written by coderig-deploy sandbox: key-only root login, this host's own key.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""


class HostPaths:
    """Where one host's files live under the lab's state directory."""

    def __init__(self, home: Path, name: str) -> None:
        self.dir = home / "hosts" / name
        self.upper, self.work, self.root = self.dir / "upper", self.dir / "work", self.dir / "root"
        self.log = self.dir / "console.log"
        self.host_key = self.dir / "ssh_host_ed25519_key"
        # Docker hosts: /var/lib/docker on the controller's own filesystem, because
        # overlay2 cannot stack on the host's overlayfs root (sandbox-hosts.md).
        self.docker = self.dir / "docker"


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# A booted host's systemd, journald, logind and udev hold about 9 inotify instances (measured: 2 bare Debian 12 hosts
# took 18); hosts running the Ollama simulator or Docker take more. Kept per host, with room to spare.
INOTIFY_PER_HOST = 32
INOTIFY_FLOOR = 1024


def _argv(cmdline: Path) -> list[bytes]:
    """A process's argv from its /proc/PID/cmdline ([] once it is gone)."""
    try:
        return cmdline.read_bytes().split(b"\0")
    except OSError:
        return []


def _is_nspawn(argv: list[bytes]) -> bool:
    return bool(argv) and argv[0].endswith(b"systemd-nspawn")


def running_hosts(proc: Path = Path("/proc")) -> int:
    """systemd-nspawn processes on this machine: every lab's hosts, of every user and test session. The limit is per
    user (root for all of them), so two engineers' test runs on one controller draw on the same instances."""
    return sum(_is_nspawn(_argv(cmdline)) for cmdline in proc.glob("[0-9]*/cmdline"))


def inotify_instances_wanted(running: int, adding: int) -> int:
    return max(INOTIFY_FLOOR, INOTIFY_PER_HOST * (running + adding))


def ensure_inotify_instances(adding: int) -> None:
    """Raise fs.inotify.max_user_instances (never lower it) so the hosts already running anywhere on this machine and
    `adding` more can all boot: past the limit a new host's systemd stops with "Failed to allocate manager object:
    Too many open files" (the default 128 runs out at about 15 hosts)."""
    wanted = inotify_instances_wanted(running_hosts(), adding)
    if int(INOTIFY_INSTANCES.read_text()) < wanted:
        INOTIFY_INSTANCES.write_text(str(wanted))


def is_mounted(path: Path) -> bool:
    target = str(path.resolve()) if path.exists() else str(path)
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def mount_overlay(paths: HostPaths, lower: Path) -> None:
    for directory in (paths.upper, paths.work, paths.root):
        directory.mkdir(parents=True, exist_ok=True)
    if is_mounted(paths.root):
        return
    options = f"lowerdir={lower},upperdir={paths.upper},workdir={paths.work}"
    proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(paths.root)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"mounting the overlay for {paths.dir} failed: {proc.stderr}")


def _write(root: Path, relative: str, text: str, mode: int = 0o644) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def write_identity(paths: HostPaths, name: str, authorized_key: str) -> None:
    """Hostname, machine id, this host's SSH host key and the lab's login key."""
    root = paths.root
    _write(root, "etc/hostname", name + "\n")
    _write(root, "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost\n")
    _write(root, "etc/machine-id", secrets.token_hex(16) + "\n", 0o444)
    _write(root, "etc/ssh/sshd_config.d/coderig-sandbox.conf", SSHD_DROPIN)
    shutil.copyfile(paths.host_key, root / "etc/ssh/ssh_host_ed25519_key")
    (root / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    shutil.copyfile(paths.host_key.with_suffix(".pub"), root / "etc/ssh/ssh_host_ed25519_key.pub")
    (root / "root/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(root, "root/.ssh/authorized_keys", authorized_key + "\n", 0o600)


# What dockerd needs inside an nspawn host, and nothing more (sandbox-hosts.md, "Docker
# Engine inside a sandbox host"): iptables for its bridge, the bpf device-cgroup
# programs, session keyrings for runc; plus a pure cgroup v2 tree (launch()).
DOCKER_OPTIONS = ("--capability=CAP_NET_ADMIN", "--system-call-filter=@keyring bpf")


def nspawn_argv(host: HostState, paths: HostPaths) -> list[str]:
    argv = [
        "systemd-nspawn", "--boot", "--directory", str(paths.root), "--machine", host.name,
        "--register=no", "--keep-unit", f"--network-namespace-path=/run/netns/{host.netns}",
        "--console=read-only", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
    ]
    if host.docker:
        argv += [*DOCKER_OPTIONS, f"--bind={paths.docker}:/var/lib/docker"]
    return argv


def launch_env(host: HostState) -> dict[str, str]:
    """nspawn's environment: a docker host gets the unified (v2) cgroup hierarchy."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    if host.docker:
        env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
    return env


def launch(host: HostState, paths: HostPaths) -> int:
    """Start the host's nspawn in its own cgroup and session; return its PID."""
    if shutil.which("systemd-nspawn") is None:
        raise EnvironmentProblem("systemd-nspawn is missing: apt-get install systemd-container")
    dirs = cgroups.create(host.cgroup)
    # A tiny shell joins the host's cgroups and execs nspawn (same PID), which is
    # safer than preexec_fn in a threaded caller.
    script = ('for d in $CODERIG_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 70; done; '
              'exec "$@"')
    launcher = ["/bin/sh", "-c", script, "coderig-launch", *nspawn_argv(host, paths)]
    env = {**launch_env(host), "CODERIG_CGROUPS": " ".join(str(d) for d in dirs)}
    if host.docker:
        paths.docker.mkdir(mode=0o710, exist_ok=True)
    with paths.log.open("ab") as log:
        proc = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, start_new_session=True)
    return proc.pid


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie child is reaped and counts as gone)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def is_our_nspawn(pid: int, paths: HostPaths) -> bool:
    """Guard against PID reuse after a crash: is `pid` this host's nspawn?"""
    argv = _argv(Path(f"/proc/{pid}/cmdline"))
    return _is_nspawn(argv) and str(paths.root).encode() in argv


def stop(host: HostState, paths: HostPaths, timeout: float = 15.0) -> None:
    """Halt the host (SIGTERM = clean poweroff), then remove every trace of it."""
    if host.pid and is_our_nspawn(host.pid, paths):
        os.kill(host.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_alive(host.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    cgroups.kill_all(host.cgroup)
    if host.pid:
        is_alive(host.pid)  # reap it if it was our child
    if is_mounted(paths.root) and subprocess.run(
            ["umount", str(paths.root)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(paths.root)], capture_output=True, check=False)
    cgroups.remove(host.cgroup)
    shutil.rmtree(paths.dir, ignore_errors=True)
