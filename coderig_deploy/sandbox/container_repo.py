"""The lab's apt repository for Ollama-in-a-container hosts (``apt/containers`` on the
artifact server), signed with the lab's apt key:

- Debian's real ``docker.io`` and its dependencies, downloaded once per machine on the
  controller (``apt-get --download-only`` against the sandbox rootfs's dpkg status:
  exactly the .debs a host lacks), because sandbox hosts have no route out;
- ``nvidia-container-toolkit``: part of the simulated GPU seam, built here with
  dpkg-deb. It ships ``nvidia-container-runtime-hook`` (dockerd runs it for a container
  with a GPU device request; it bind-mounts the simulated nvidia-smi, libnvidia-ml and
  cards into the container, as the real hook does), ``nvidia-container-runtime`` (the
  runc shim) and ``nvidia-ctk runtime configure``.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox import rootfs
from coderig_deploy.sandbox.fake_nvidia_repo import _release, _run, _sign, _stanza, signing_key

ENGINE_PACKAGE = "docker.io"
TOOLKIT_PACKAGE = "nvidia-container-toolkit"
TOOLKIT_VERSION = "1.17.8-1"  # NVIDIA's version scheme; the content is the simulation
_GPU_DIR = Path(__file__).resolve().parent / "gpu"
TOOLKIT_FILES = {
    "usr/bin/nvidia-container-runtime-hook": "nvidia_container_runtime_hook.py",
    "usr/bin/nvidia-container-runtime": "nvidia_container_runtime.py",
    "usr/bin/nvidia-ctk": "nvidia_ctk.py",
}


@dataclass(frozen=True)
class ContainerRepo:
    directory: Path  # flat repository ("Suites: ./") with key.asc
    packages: list[str]


def download_engine(root: Path, cache: Path | None = None) -> list[Path]:
    """The .debs `apt-get install docker.io` needs on a host made from `root` (cached)."""
    target = (cache or rootfs.cache_dir()) / f"docker-debs-{root.name.removeprefix('rootfs-')}"
    marker = target / ".complete"
    target.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.is_file():
            (target / "partial").mkdir(exist_ok=True)
            proc = subprocess.run(
                ["apt-get", "-q", "-y", "--download-only", "--no-install-recommends",
                 "-o", f"Dir::State::status={root / 'var/lib/dpkg/status'}",
                 "-o", f"Dir::Cache::archives={target}", "-o", "Debug::NoLocking=1",
                 "install", ENGINE_PACKAGE], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise EnvironmentProblem(f"downloading {ENGINE_PACKAGE} for the sandbox failed: "
                                         + " | ".join(proc.stderr.strip().splitlines()[-3:]))
            marker.write_text("ok\n")
    return sorted(target.glob("*.deb"))


def build_toolkit(out: Path) -> Path:
    """The simulated nvidia-container-toolkit package."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN/control").write_text(
            f"Package: {TOOLKIT_PACKAGE}\nVersion: {TOOLKIT_VERSION}\nArchitecture: amd64\n"
            "Maintainer: coderig sandbox <root@localhost>\nDepends: python3, util-linux, mount\n"
            "Description: sandbox simulation of the NVIDIA Container Toolkit (coderig-deploy tests)\n"
            " Wires the simulated nvidia-smi and libnvidia-ml into containers that ask for GPUs.\n")
        for relative, source in TOOLKIT_FILES.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_GPU_DIR / source, path)
            path.chmod(0o755)
        target = out / f"{TOOLKIT_PACKAGE}_{TOOLKIT_VERSION}_amd64.deb"
        _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(target)])
    return target


def build(served: Path, gnupg: Path, root: Path) -> ContainerRepo:
    """Write apt/containers under `served` (the artifact server's root), signed."""
    with signing_key(gnupg) as (env, fingerprint):
        return _write(served, env, fingerprint, root)


def _write(served: Path, env: dict[str, str], fingerprint: str, root: Path) -> ContainerRepo:
    repo = served / "apt/containers"
    repo.mkdir(parents=True, exist_ok=True)
    debs = []
    for deb in download_engine(root):
        shutil.copyfile(deb, repo / deb.name)
        debs.append(repo / deb.name)
    debs.append(build_toolkit(repo))
    (repo / "Packages").write_text("\n".join(_stanza(d, f"./{d.name}") for d in debs))
    _sign(_release(repo, [repo / "Packages"], "Origin: coderig sandbox containers\n"), env, fingerprint)
    (repo / "key.asc").write_text(_run(["gpg", "--batch", "--armor", "--export", fingerprint], env))
    return ContainerRepo(repo, [d.name.split("_")[0] for d in debs])
