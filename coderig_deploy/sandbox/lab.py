"""A lab: a set of booted sandbox hosts sharing one bridge, key and state directory.

    lab = Lab()                      # the caller's lab (state.lab_home())
    lab.up([HostSpec(name="ws1", gpu="rtx-4090", count=2)])
    lab.ssh("ws1", "nvidia-smi -L")
    lab.down()
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from coderig_deploy.atomicfile import write_all
from coderig_deploy.errors import EnvironmentProblem, RunFailed, UserInputError
from coderig_deploy.sandbox import (
    boot,
    cgroups,
    gpu_sim,
    hosts,
    inventory,
    naming,
    network,
    processes,
    ssh,
    state,
    teardown,
)
from coderig_deploy.sandbox.rootfs import ensure_rootfs
from coderig_deploy.sandbox.state import GpuSetup, HostState, LabState, ServiceState


class HostSpec(BaseModel):
    """What `up` should add: one host, its name (or a generated one) and its GPUs."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="hostname; default <prefix><n>")
    gpu: str | None = Field(default=None, description="catalog GPU slug, e.g. rtx-4090")
    count: int | None = Field(default=None, ge=0, le=8,
                              description="number of cards; 0 = no GPU; default 1 with a gpu")
    driver_installed: bool = Field(default=True, description="False: cards visible, no driver")
    missing: int = Field(default=0, ge=0, le=8, description="How many of the cards are dead: on the PCI "
                         "bus (lspci) but not seen by the driver (nvidia-smi, NVML, Ollama)")
    docker: bool = Field(default=False, description="boot with what Docker Engine needs")

    @property
    def cards(self) -> int:
        """How many cards the host gets."""
        return self.count if self.count is not None else (1 if self.gpu else 0)


def require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "the sandbox boots hosts with systemd-nspawn and needs root: run it with sudo")


class Lab:
    """One lab on this machine, identified by its state directory."""

    def __init__(self, home: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.home = (home or state.lab_home()).resolve()
        self.progress = progress or (lambda message: None)
        self.key = self.home / "id_ed25519"
        self.known_hosts = self.home / "known_hosts"
        self.inventory_path = self.home / "inventory.yml"
        self.last_up_seconds: float | None = None

    # -- reading ---------------------------------------------------------------
    @property
    def state(self) -> LabState | None:
        return state.load(self.home)

    def hosts(self) -> list[HostState]:
        current = self.state
        return sorted(current.hosts.values(), key=lambda h: h.slot) if current else []

    def host(self, name: str) -> HostState:
        for candidate in self.hosts():
            if candidate.name == name:
                return candidate
        raise UserInputError(f"no sandbox host {name!r} in the lab at {self.home}")

    @property
    def bridge_ip(self) -> str:
        current = self.state
        if current is None:
            raise EnvironmentProblem(f"no sandbox lab at {self.home}: run `sandbox up` first")
        return current.bridge_ip

    def ssh(self, host: str | HostState, command: str, timeout: float = 60.0,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run `command` as root on a host over SSH (host key checked)."""
        target = host if isinstance(host, HostState) else self.host(host)
        return ssh.run(target.ip, self.key, self.known_hosts, command, timeout, stdin)

    def paramiko(self, host: str | HostState) -> Any:
        """A connected paramiko SSHClient to the host (unknown host keys rejected)."""
        target = host if isinstance(host, HostState) else self.host(host)
        return ssh.paramiko_client(target.ip, self.key, self.known_hosts)

    def is_up(self, host: HostState) -> bool:
        """True while the host's systemd-nspawn runs (state may be stale after a crash)."""
        paths = hosts.HostPaths(self.home, host.name)
        return host.pid is not None and hosts.is_alive(host.pid) and \
            hosts.is_our_nspawn(host.pid, paths)

    def memory_bytes(self, name: str) -> int | None:
        return cgroups.memory_bytes(self.host(name).cgroup)

    # -- up --------------------------------------------------------------------
    def up(self, specs: list[HostSpec], prefix: str = "ws", timeout: float = 120.0,
           ) -> list[HostState]:
        """Boot the hosts in `specs` (in parallel) and wait until each is `running`."""
        require_root()
        validate(specs, prefix)
        with state.locked(self.home):
            current = self._ensure_lab()
            new = self._record_hosts(current, specs, prefix)
            hosts.ensure_inotify_instances(len(new))
            for host in new:
                self._create(current, host)
            self._write_access_files(current)
            self.progress(f"booting {len(new)} host(s): {', '.join(h.name for h in new)}")
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=max(1, len(new))) as pool:
                results = list(pool.map(lambda h: boot.wait_running(self, h, timeout), new))
            self.last_up_seconds = time.monotonic() - started
            for host, (status, seconds) in zip(new, results, strict=True):
                current.hosts[host.name].status, current.hosts[host.name].boot_seconds = \
                    status, seconds
            state.save(current)
        failed = [h.name for h, (status, _) in zip(new, results, strict=True) if status != "running"]
        if failed:
            raise RunFailed(boot.failure_report(self, failed))
        self._start_services()
        return [self.host(h.name) for h in new]

    def _ensure_lab(self) -> LabState:
        current = self.state
        if current is None:
            lab = naming.lab_id(str(self.home))
            bridge = naming.bridge_name(lab)
            used = [] if network.link_exists(bridge) else network.used_networks()
            subnet = next(n for n in naming.subnet_candidates(lab)
                          if not any(n.overlaps(u) for u in used))
            current = LabState(lab_id=lab, home=self.home, bridge=bridge, subnet=str(subnet),
                               bridge_ip=str(naming.bridge_address(subnet)))
            state.save(current)
        self.progress("preparing the shared Debian rootfs (built once per machine)")
        rootfs = ensure_rootfs(progress=self.progress)
        current.rootfs = rootfs.path
        self.progress(f"rootfs ready from {rootfs.source} in {rootfs.seconds:.1f}s")
        ssh.generate_key(self.key, f"coderig-sandbox@{current.lab_id}")
        subnet = ipaddress.IPv4Network(current.subnet)
        network.ensure_bridge(current.bridge, ipaddress.IPv4Interface(
            f"{current.bridge_ip}/{subnet.prefixlen}"))
        state.save(current)
        return current

    def _record_hosts(self, current: LabState, specs: list[HostSpec], prefix: str,
                      ) -> list[HostState]:
        taken = set(current.hosts)
        generated = iter(naming.host_names(prefix, sum(1 for s in specs if not s.name),
                                           taken | {s.name for s in specs if s.name}))
        subnet = ipaddress.IPv4Network(current.subnet)
        used_slots = {h.slot for h in current.hosts.values()}
        new: list[HostState] = []
        for spec in specs:
            name = spec.name or next(generated)
            if name in taken:
                raise UserInputError(f"a host named {name!r} is already in the lab at {self.home}")
            slot = next(s for s in range(naming.MAX_HOSTS) if s not in used_slots)
            used_slots.add(slot)
            taken.add(name)
            host = HostState(
                name=name, slot=slot, ip=str(naming.host_address(subnet, slot)),
                netns=naming.netns_name(current.lab_id, name),
                veth=naming.veth_name(current.lab_id, name),
                cgroup=naming.cgroup_name(current.lab_id, name),
                gpu=GpuSetup(slug=spec.gpu if spec.cards else None, count=spec.cards,
                             driver_installed=spec.driver_installed,
                             missing=min(spec.missing, spec.cards)),
                docker=spec.docker)
            current.hosts[name] = host
            new.append(host)
        state.save(current)  # recorded before anything exists, so `down` can clean up
        return new

    def _create(self, current: LabState, host: HostState) -> None:
        paths = hosts.HostPaths(self.home, host.name)
        paths.dir.mkdir(parents=True, exist_ok=True)
        host.host_key = ssh.generate_key(paths.host_key, f"root@{host.name}")
        subnet = ipaddress.IPv4Network(current.subnet)
        network.create_host_network(host.netns, host.veth, current.bridge,
                                    ipaddress.IPv4Interface(f"{host.ip}/{subnet.prefixlen}"))
        if host.docker:
            network.enable_forwarding(host.netns)
        assert current.rootfs is not None
        hosts.mount_overlay(paths, current.rootfs)
        hosts.write_identity(paths, host.name, self.key.with_suffix(".pub").read_text().strip())
        spec = load_gpu(host.gpu.slug) if host.gpu.count and host.gpu.slug else None
        document = gpu_sim.gpus_document(spec, host.gpu.count, f"{current.lab_id}/{host.name}",
                                         missing=host.gpu.missing)
        gpu_sim.install(paths.root, document, host.gpu.driver_installed)
        host.pid, host.status = hosts.launch(host, paths), "booting"
        state.save(current)

    def _write_access_files(self, current: LabState) -> None:
        lines = [ssh.known_hosts_line([h.ip, h.name], h.host_key)
                 for h in sorted(current.hosts.values(), key=lambda h: h.slot) if h.host_key]
        write_all({self.known_hosts: "".join(line + "\n" for line in lines),
                   self.inventory_path: inventory.render(current, self.key, self.known_hosts)})

    # -- services ----------------------------------------------------------------
    def register_service(self, name: str, pid: int, url: str = "") -> None:
        """Record a controller-side process serving this lab; `down` stops it."""
        with state.locked(self.home):
            current = self.state
            if current is None:
                raise EnvironmentProblem(f"no sandbox lab at {self.home}")
            current.services[name] = ServiceState(
                name=name, pid=pid, url=url, started=processes.start_time(pid))
            state.save(current)

    def _start_services(self) -> None:
        module = _services_module()
        if module is not None and hasattr(module, "start"):
            module.start(self)

    # -- down --------------------------------------------------------------------
    def down(self, names: list[str] | None = None) -> list[str]:
        """Stop and remove hosts (all, and the lab itself, when `names` is None)."""
        require_root()
        if names is None:
            module = _services_module()
            if module is not None and hasattr(module, "stop") and self.state is not None:
                module.stop(self)
        with state.locked(self.home):
            current = self.state
            if current is None:
                return []
            unknown = [n for n in names or [] if n not in current.hosts]
            if unknown:
                raise UserInputError(f"no sandbox host named {', '.join(unknown)} in {self.home}")
            doomed = [current.hosts[n] for n in (names if names is not None else current.hosts)]
            with ThreadPoolExecutor(max_workers=max(1, len(doomed))) as pool:
                list(pool.map(lambda h: teardown.destroy_host(self.home, h), doomed))
            for host in doomed:
                del current.hosts[host.name]
            if names is None:
                teardown.destroy_lab(self.home, current)
            else:
                state.save(current)
                self._write_access_files(current)
        return [h.name for h in doomed]


def validate(specs: list[HostSpec], prefix: str) -> None:
    """Reject bad names and GPUs before anything is created."""
    for spec in specs:
        name = spec.name or f"{prefix}1"
        if not naming.valid_host_name(name):
            raise UserInputError(f"{name!r} is not a valid host name: lowercase letters, digits "
                                 "and '-', starting with a letter, at most 31 characters")
        if spec.cards and not spec.gpu:
            raise UserInputError(f"{spec.cards} GPU(s) asked for without a model: add --gpu SLUG")
        if spec.cards and spec.gpu:
            load_gpu(spec.gpu)


def load_gpu(slug: str) -> gpu_sim.GpuLike:
    """The catalog's GpuSpec for `slug` (raises the catalog's unknown-name error)."""
    from coderig_deploy.catalog import load_catalog

    spec: gpu_sim.GpuLike = load_catalog().gpu(slug)
    return spec


def _services_module():  # type: ignore[no-untyped-def]
    """The lab's controller-side services (registry, release archive), if built."""
    if importlib.util.find_spec("coderig_deploy.sandbox.services") is None:
        return None
    return importlib.import_module("coderig_deploy.sandbox.services")
