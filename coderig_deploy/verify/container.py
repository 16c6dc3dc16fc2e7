"""Checks of the Ollama container (ollama.runtime docker), read through the docker SDK.

The SDK reaches the host's dockerd over SSH with its paramiko transport (`docker system
dial-stdio` on the host), which checks host keys against ~/.ssh/known_hosts and rejects
unknown ones; `inspect` gives it a private HOME whose .ssh names the target's key and
known_hosts, so the caller's own files are neither needed nor touched.
The checks are pure functions of what `docker inspect` returns.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coderig_deploy.bench.checks import FAIL, PASS, SKIP, Check
from coderig_deploy.container_spec import ContainerSpec, container_spec
from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.profiles import Profile
from coderig_deploy.project import TargetHost
from coderig_deploy.verify.runner import Target

LOOPBACK = ("127.0.0.1", "::1")
_HOME_LOCK = threading.Lock()


@dataclass(frozen=True)
class ContainerExpect:
    """What the container_runtime role was told to run."""

    image: str  # repository@sha256:<hex>
    env: dict[str, str]
    publish: str  # host address:port
    port: int = 11434
    name: str = "ollama"
    restart: str = "unless-stopped"
    # From a bundle: the image ID `docker load` gave it (the config digest the pinned
    # manifest names; a loaded image has no RepoDigest). bundle/image.py explains the chain.
    image_id: str | None = None


@dataclass
class HostContainers:
    """What the host's dockerd says: our container, its image, every running container."""

    container: dict[str, Any] | None
    image: dict[str, Any] | None
    running: list[dict[str, Any]] = field(default_factory=list)


def _check(name: str, ok: bool, detail: str) -> Check:
    return Check(name, PASS if ok else FAIL, "ok" if ok else detail)


def _bindings(attrs: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(container port, host ip, host port) of every published port."""
    ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
    return [(cport, b.get("HostIp", ""), b.get("HostPort", "")) for cport, binds in sorted(ports.items())
            for b in binds or []]


def _listing(bindings: list[tuple[str, str]]) -> str:
    return ", ".join(f"{ip or '0.0.0.0'}:{port}" for ip, port in bindings) or "nothing"


def _loaded_pin(attrs: dict[str, Any], expect: ContainerExpect) -> bool:
    """The container runs the image the bundle loaded for the pin (by ID, as the role started it)."""
    return expect.image_id is not None and attrs.get("Image") == expect.image_id


def container_checks(seen: HostContainers, expect: ContainerExpect) -> list[Check]:
    """One named check per property of the container; all fail when it is missing."""
    attrs = seen.container
    if attrs is None:
        return [Check("container_present", FAIL, f"no container named {expect.name}")]
    state, host = attrs.get("State") or {}, attrs.get("HostConfig") or {}
    repo, _, digest = expect.image.partition("@")
    repo_digests = (seen.image or {}).get("RepoDigests") or []
    requests = host.get("DeviceRequests") or []
    gpu = [r for r in requests if any("gpu" in caps for caps in r.get("Capabilities") or [])]
    env = dict(item.split("=", 1) for item in (attrs.get("Config") or {}).get("Env") or [] if "=" in item)
    wrong = sorted(k for k, v in expect.env.items() if env.get(k) != v)
    bind_ip, _, bind_port = expect.publish.rpartition(":")
    ours = [(ip, hp) for cport, ip, hp in _bindings(attrs) if cport == f"{expect.port}/tcp"]
    health = (state.get("Health") or {}).get("Status", "none")
    restarts = int(attrs.get("RestartCount") or 0)
    policy = (host.get("RestartPolicy") or {}).get("Name", "")
    return [
        _check("container_running", bool(state.get("Running")), f"container is {state.get('Status', '?')}"),
        _check("container_image_digest", f"{repo}@{digest}" in repo_digests or _loaded_pin(attrs, expect),
               f"runs {attrs.get('Config', {}).get('Image', '?')} ({', '.join(repo_digests) or 'no digest'}), "
               f"pinned {expect.image}"),
        _check("container_gpu_request", bool(gpu), "no GPU device request (--gpus): Ollama runs on the CPU"),
        _check("container_env", not wrong, "differs from the plan: " + ", ".join(
            f"{k}={env.get(k)!r} (plan {expect.env[k]!r})" for k in wrong)),
        _check("container_port_loopback", bool(ours) and all(ip == bind_ip and hp == bind_port for ip, hp in ours),
               f"port {expect.port} published on {_listing(ours)}, "
               f"plan {expect.publish} only"),
        _check("container_health", health == "healthy", f"health is {health}"),
        _check("container_restarts", restarts == 0, f"restarted {restarts} time(s): see `docker logs {expect.name}`"),
        _check("container_restart_policy", policy == expect.restart, f"restart policy {policy or 'no'}, "
               f"plan {expect.restart}"),
    ]


def exposed_containers(seen: HostContainers, allowed: str) -> Check:
    """No running container publishes a port beyond loopback (except an exposed plan's)."""
    found = [f"{(c.get('Name') or '?').lstrip('/')} {ip or '0.0.0.0'}:{hp}" for c in seen.running
             for _, ip, hp in _bindings(c) if ip not in LOOPBACK and f"{ip}:{hp}" != allowed]
    return _check("containers_loopback_only", not found,
                  "published beyond this machine (Ollama has no authentication): " + ", ".join(found))


def _ssh_home(home: Path, address: str, user: str, port: int, key: Path | None, known: Path | None) -> None:
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700)
    lines = [f"Host {address}", f"  User {user}", f"  Port {port}"] + ([f"  IdentityFile {key}"] if key else [])
    (ssh / "config").write_text("\n".join(lines) + "\n")
    source = known or Path.home() / ".ssh" / "known_hosts"
    if source.is_file():
        shutil.copyfile(source, ssh / "known_hosts")


def inspect(address: str, user: str = "root", port: int = 22, key: Path | None = None,
            known_hosts: Path | None = None, name: str = "ollama") -> HostContainers:
    """Read the container, its image and every running container from the host's dockerd."""
    import docker  # the SDK is only needed for docker-runtime hosts
    import requests

    with _HOME_LOCK, tempfile.TemporaryDirectory(prefix="coderig-docker-") as tmp:
        _ssh_home(Path(tmp), address, user, port, key, known_hosts)
        saved = os.environ.get("HOME")
        os.environ["HOME"] = tmp
        try:
            client = docker.DockerClient(base_url=f"ssh://{user}@{address}:{port}", use_ssh_client=False,
                                         timeout=30)
        except Exception as exc:  # the SDK wraps paramiko's errors in several types
            raise EnvironmentProblem(f"{address}: cannot reach dockerd over SSH: {exc}") from None
        finally:
            os.environ["HOME"] = saved or ""
        try:
            return _read(client, name)
        except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
            raise EnvironmentProblem(f"{address}: dockerd did not answer over SSH: {exc}") from None
        finally:
            client.close()


def _read(client: Any, name: str) -> HostContainers:
    from docker.errors import NotFound

    running = [client.api.inspect_container(c["Id"]) for c in client.api.containers()]
    try:
        container = client.api.inspect_container(name)
    except NotFound:
        return HostContainers(None, None, running)
    try:
        image = client.api.inspect_image(container["Image"])
    except NotFound:
        image = None
    return HostContainers(container, image, running)


def expect_for(profile: Profile, image: str | None = None, image_id: str | None = None,
               extra_env: dict[str, str] | None = None) -> ContainerExpect | None:
    """The container a host of `profile` runs (None for runtime native); `image` overrides
    the profile's pin (the sandbox lab's simulator image, a bundle's), `image_id` is the
    ID a bundle's archive loads as."""
    spec = container_spec(profile, image, extra_env=extra_env)
    return None if spec is None else expect_from(spec, image_id)


def expect_from(spec: ContainerSpec, image_id: str | None = None) -> ContainerExpect:
    return ContainerExpect(image=spec.image, env=spec.env, publish=spec.publish, port=spec.container_port,
                           image_id=image_id)


def check_provisioned(hosts: list[TargetHost], spec: ContainerSpec,
                      image_id: str | None = None) -> dict[str, list[Check]]:
    """apply's container checks for the hosts it provisioned: the same checks as verify's
    (`image_id`: what a bundle's archive loads as, run by ID since it has no RepoDigest).
    The SDK logs in as the inventory user; one that needs sudo (become) may not reach
    dockerd, and a local connection has no SSH: both are skipped, saying so."""
    skipped = {h.name: [Check("container_checks", SKIP, "not read: the docker SDK goes over SSH as a user "
                              "dockerd accepts (run `coderig-deploy verify` as root)")]
               for h in hosts if h.connection != "ssh" or h.become}
    targets = [Target(h.name, h.address or h.name, h.user or getpass.getuser(), h.port or 22,
                      Path(h.key_file) if h.key_file else None, Path(h.known_hosts) if h.known_hosts else None)
               for h in hosts if h.name not in skipped]
    return {**skipped, **check_hosts(targets, expect_from(spec, image_id))}


def check_hosts(targets: list[Target], expect: ContainerExpect) -> dict[str, list[Check]]:
    """{host name: container checks} for verify's Targets."""
    results: dict[str, list[Check]] = {}
    for target in targets:
        try:
            seen = inspect(target.address, target.user, target.port, target.key_file, target.known_hosts,
                           expect.name)
        except EnvironmentProblem as exc:
            results[target.name] = [Check("container_present", FAIL, str(exc))]
            continue
        allowed = expect.publish if not expect.publish.startswith(LOOPBACK) else ""
        results[target.name] = [*container_checks(seen, expect), exposed_containers(seen, allowed)]
    return results
