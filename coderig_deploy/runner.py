"""The one place that runs Ansible: ansible-runner over an explicit private data dir.

A run directory is ansible-runner's private data dir, written out in full:

    <run>/project/        the rendered project (site.yml, group_vars/, roles/, ansible.cfg)
    <run>/inventory/hosts.yml
    <run>/env/extravars   <run>/env/envvars   <run>/env/settings
    <run>/artifacts/      runner's own record (events, stdout, rc, status)

Results come from runner's `status`, `rc`, `stats` and events, never from stdout.
Nothing secret reaches the artifacts: the job environment is an allow-list
(runenv.py), gathered host facts are cut from every event before runner stores it,
and SSH control sockets live in a private directory removed after the run
(controldir.py). Host keys are always checked (hostkeys.py).
Ctrl-C during a run asks runner to cancel (it stops ansible-playbook's process
group); the outcome then has status "canceled". A run past its `timeout` is
stopped the same way, with status "timeout". Either way the host workers
Ansible started in sessions of their own are then stopped too
(stop_leftover_workers). A rerun converges because every role is idempotent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from coderig_deploy import controldir, hostkeys, runenv
from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.results import FACT_KEYS

EventHandler = Callable[[dict[str, Any]], None]
IDENT = "apply"


@dataclass(frozen=True)
class RunRequest:
    """What to run and how; the project must already be rendered."""

    run_dir: Path
    files: dict[str, bytes]
    check: bool = False
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    forks: int = 5
    extravars: dict[str, Any] = field(default_factory=dict)
    extra_files: dict[str, Path] = field(default_factory=dict)
    accept_new_host_keys: bool = False  # record unknown hosts' keys (accept-new); changed keys still fail
    timeout: int | None = None  # seconds for the whole run; runner then stops it, status "timeout"


@dataclass
class RunOutcome:
    """What ansible-runner reported."""

    status: str  # successful | failed | canceled | timeout
    rc: int
    stats: dict[str, dict[str, int]]
    events: list[dict[str, Any]]
    artifacts: Path


def tool_path() -> str:
    """PATH for ansible-playbook: this interpreter's bin directory (the venv) first."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def require_ansible_playbook(path: str | None = None) -> str:
    """The ansible-playbook runner will start, or EnvironmentProblem (exit 2)."""
    found = shutil.which("ansible-playbook", path=path or tool_path())
    if found is None:
        raise EnvironmentProblem(
            "ansible-playbook not found on PATH or next to this Python: install ansible-core "
            "into the same environment (pip install ansible-core)"
        )
    return found


def prepare(request: RunRequest, control_dir: Path) -> dict[str, str]:
    """Write the private data dir layout; return the variables the job gets from us."""
    project = request.run_dir / "project"
    for relative, data in request.files.items():
        _write(project / relative, data)
    for relative, source in request.extra_files.items():
        _write(project / relative, source.read_bytes())
    _write(request.run_dir / "inventory" / "hosts.yml", request.files["inventory.yml"])
    env = request.run_dir / "env"
    _write(env / "extravars", json.dumps(request.extravars, indent=2, sort_keys=True).encode())
    envvars = {
        "PATH": tool_path(),
        "ANSIBLE_CONFIG": str(project / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "True",  # runner sets False unless it is set
        "ANSIBLE_SSH_ARGS": hostkeys.ssh_args(request.files["ansible.cfg"].decode(), request.accept_new_host_keys),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
    }
    _write(env / "envvars", json.dumps(envvars, indent=2, sort_keys=True).encode())
    _write(env / "settings", json.dumps({"suppress_ansible_output": True}, indent=2).encode())
    return envvars


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def run(request: RunRequest, on_event: EventHandler | None = None) -> RunOutcome:
    """Run site.yml of the prepared project; Ctrl-C cancels it cleanly."""
    require_ansible_playbook()
    request.run_dir.mkdir(parents=True, exist_ok=True)
    control_dir = controldir.create(request.run_dir)
    try:
        return _run(request, prepare(request, control_dir), on_event)
    finally:
        controldir.remove(control_dir)
        _remove_partials(request.run_dir / "artifacts" / IDENT / "job_events")


def _run(request: RunRequest, envvars: dict[str, str], on_event: EventHandler | None) -> RunOutcome:
    events: list[dict[str, Any]] = []

    def handle(event: dict[str, Any]) -> bool:
        scrub_facts(event)  # runner stores the event after this returns
        events.append(event)
        if on_event is not None:
            on_event(event)
        return True

    config = ansible_runner.RunnerConfig(
        private_data_dir=str(request.run_dir), ident=IDENT, playbook="site.yml",
        cmdline="--check" if request.check else None, limit=request.limit,
        tags=",".join(request.tags) or None, forks=request.forks, quiet=True,
        rotate_artifacts=0, fact_cache_type="memory",  # gathered facts stay out of the artifacts
        timeout=request.timeout,
    )
    config.prepare()
    config.env = runenv.job_env(config.env, os.environ, envvars)  # written to artifacts/<ident>/command
    with _interrupt_flag() as interrupted:
        result = ansible_runner.Runner(config, event_handler=handle, cancel_callback=interrupted.is_set)
        result.run()
    status = "canceled" if interrupted.is_set() else str(result.status)
    if status in ("canceled", "timeout"):
        stop_leftover_workers(request.run_dir)
    return RunOutcome(status=status, rc=int(result.rc if result.rc is not None else -1),
                      stats=_stats(result.stats), events=events,
                      artifacts=request.run_dir / "artifacts" / IDENT)


def stop_leftover_workers(run_dir: Path, wait_s: float = 5.0) -> list[int]:
    """Kill what is left of a stopped run's ansible-playbook; returns the PIDs signalled.

    runner stops a canceled or timed-out run by killing ansible-playbook's process group, but Ansible runs each
    host's task in a worker process that starts a session of its own (os.setsid in its WorkerProcess), outside
    that group: the worker would go on with its task (a download, a package install) after the run has ended.
    Every process whose command line names this run's inventory is the playbook or one of its workers; each is
    killed with its process group (its connection and module processes). A killed process lingers until the kernel
    has torn it down, and a worker may fork meanwhile, so the scan repeats until nothing names the inventory (or
    `wait_s` has passed). Linux /proc; elsewhere nothing to do."""
    own_group = os.getpgrp()
    signalled: list[int] = []
    deadline = time.monotonic() + wait_s
    while (pids := pids_naming(run_dir / "inventory")) and time.monotonic() < deadline:
        for pid in pids:
            try:
                group = os.getpgid(pid)
                if group == own_group:
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.killpg(group, signal.SIGKILL)
                if pid not in signalled:
                    signalled.append(pid)
            except OSError:  # gone meanwhile
                continue
        time.sleep(0.05)
    return signalled


def pids_naming(path: Path) -> list[int]:
    """PIDs of the live processes that have `path` as one of their arguments (Linux /proc; zombies have none)."""
    marker = os.fsencode(path)
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def _remove_partials(job_events: Path) -> None:
    """Drop the callback's unscrubbed partial event files a killed run leaves behind
    (runner removes each one as it stores the scrubbed event)."""
    for partial in job_events.glob("*-partial.json"):
        partial.unlink(missing_ok=True)


def scrub_facts(event: dict[str, Any]) -> None:
    """Cut gathered facts (serials, product UUID, kernel cmdline, mounts, env) from an
    event in place; only the summary facts the roles set for the report remain."""
    data = event.get("event_data")
    res = data.get("res") if isinstance(data, dict) else None
    if isinstance(res, dict) and isinstance(res.get("ansible_facts"), dict):
        res["ansible_facts"] = {k: v for k, v in res["ansible_facts"].items() if k in FACT_KEYS}


def _stats(raw: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """runner's stats ({"ok": {host: n}, ...}) turned per host ({host: {"ok": n, ...}})."""
    per_host: dict[str, dict[str, int]] = {}
    for key, counts in (raw or {}).items():
        if isinstance(counts, dict):
            for host, count in counts.items():
                per_host.setdefault(host, {})[key] = int(count)
    return per_host


@contextmanager
def _interrupt_flag() -> Iterator[threading.Event]:
    """Turn the first Ctrl-C into a cancel request; a second one interrupts at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
