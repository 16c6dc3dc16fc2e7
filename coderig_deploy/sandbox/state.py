"""The lab's state file: what exists, so `down` can clean it even after a crash.

Everything is recorded *before* it is created; cleanup checks what really exists.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from coderig_deploy.atomicfile import write_atomic
from coderig_deploy.errors import EnvironmentProblem

LABS_ROOT = Path("/var/lib/coderig/sandbox")
STATE_FILE = "lab.json"
# A user name that is safe as one path component (POSIX names, plus '@' for directory users).
USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")


def invoking_user() -> str:
    """Who asked for the lab: SUDO_USER when root runs it via sudo, else the uid's name."""
    sudo_user = os.environ.get("SUDO_USER", "") if os.geteuid() == 0 else ""
    if sudo_user:
        name = sudo_user
    else:
        try:
            name = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:  # a uid without a passwd entry (containers)
            name = f"uid-{os.getuid()}"
    if not USER_NAME.fullmatch(name):
        raise EnvironmentProblem(f"user name {name!r} cannot name a sandbox lab: "
                                 "set CODERIG_SANDBOX_HOME to a directory for it")
    return name


def lab_home() -> Path:
    """The caller's lab: LABS_ROOT/<user>, so two users never share (or remove) hosts.

    CODERIG_SANDBOX_HOME overrides it (tests, or a lab a team shares on purpose).
    """
    override = os.environ.get("CODERIG_SANDBOX_HOME")
    return Path(override).resolve() if override else LABS_ROOT / invoking_user()


class GpuSetup(BaseModel):
    """The simulated cards of one host."""

    model_config = ConfigDict(extra="forbid")

    slug: str | None = Field(default=None, description="catalog GPU slug; None = no GPU")
    count: int = Field(default=0, ge=0, le=8)
    driver_installed: bool = Field(default=True, description="False: cards visible, no driver")
    missing: int = Field(default=0, ge=0, le=8, description="Dead cards among `count`: lspci only")


class HostState(BaseModel):
    """One sandbox host and every resource it holds on the controller."""

    model_config = ConfigDict(extra="forbid")

    name: str
    slot: int
    ip: str
    netns: str
    veth: str
    cgroup: str
    gpu: GpuSetup
    docker: bool = Field(default=False, description="booted with what Docker Engine needs")
    host_key: str = Field(default="", description="the host's ed25519 public key line")
    pid: int | None = Field(default=None, description="the systemd-nspawn process")
    status: str = "creating"  # creating | booting | running | failed | stopped
    boot_seconds: float | None = None


class ServiceState(BaseModel):
    """A controller-side process serving the lab on the bridge (registry, archive)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    pid: int
    url: str = ""
    started: int | None = Field(default=None, description="start time (clock ticks), guards PID reuse")


class LabState(BaseModel):
    """A whole lab: its network, its keys, its hosts and services."""

    model_config = ConfigDict(extra="forbid")

    lab_id: str
    home: Path
    bridge: str
    subnet: str
    bridge_ip: str
    rootfs: Path | None = None
    hosts: dict[str, HostState] = {}
    services: dict[str, ServiceState] = {}


def state_path(home: Path) -> Path:
    return home / STATE_FILE


def load(home: Path) -> LabState | None:
    """The lab's state, or None when no lab lives in `home`."""
    path = state_path(home)
    if not path.is_file():
        return None
    return LabState.model_validate_json(path.read_text())


def save(state: LabState) -> None:
    """Write the state atomically (a crash leaves the old or the new file)."""
    write_atomic(state_path(state.home), state.model_dump_json(indent=2))


@contextmanager
def locked(home: Path) -> Iterator[None]:
    """Serialise `up` and `down` on one lab."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
