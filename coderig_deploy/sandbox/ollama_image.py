"""The Ollama simulator as a container image, pushed to the lab's registry.

Built without network and without Docker on the controller: one layer made in Python
from the sandbox rootfs's own python3 (the interpreter, the shared libraries `ldd`
names, the standard library without tests and GUI) and the simulator release's
files laid out like the official image (``/usr/bin/ollama``, ``/usr/lib/ollama``;
entrypoint ``/usr/bin/ollama serve``, ``OLLAMA_HOST=0.0.0.0:11434``). No GPU is in
the image: the simulated container toolkit mounts the cards at run time.
The manifest is Docker's schema 2, which docker 20.10 and the registry both speak.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox import registry
from coderig_deploy.sandbox.ollama_sim import VERSION
from coderig_deploy.sandbox.ollama_sim.store import MANIFEST_V2
from coderig_deploy.sandbox.release import MTIME, _files

REPOSITORY = "coderig/ollama-sim"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
PYTHON = "usr/bin/python3.11"
STDLIB = "usr/lib/python3.11"
SKIP = ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
        "unittest", "__pycache__", "distutils", "config-3.11-x86_64-linux-gnu")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Image:
    config: bytes
    layer: bytes  # gzip
    manifest: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def _libraries(root: Path) -> list[str]:
    """Every shared library python3 and its extension modules load, as rootfs paths."""
    targets = [f"/{PYTHON}", *(f"/{p.relative_to(root)}" for p in (root / STDLIB / "lib-dynload").glob("*.so"))]
    proc = subprocess.run(["chroot", str(root), "ldd", *targets], capture_output=True, text=True, check=False)
    if not proc.stdout:
        raise EnvironmentProblem(f"ldd in {root} failed: {proc.stderr.strip()[:300]}")
    found = set()
    for line in proc.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0] if parts and parts[0].startswith("/") else ""
        if path.startswith("/") and not path.endswith(":"):
            found |= _canonical(root, path.lstrip("/"))
    return sorted(found)


def _canonical(root: Path, relative: str) -> set[str]:
    """The path below usr/ (usrmerge: /lib is /usr/lib) and, for a symlink, its target too."""
    head = relative.split("/", 1)[0]
    if head in ("lib", "lib64", "bin", "sbin") and (root / head).is_symlink():
        relative = f"usr/{relative}"
    names = {relative}
    if (root / relative).is_symlink():
        link = os.readlink(root / relative)
        target = link.lstrip("/") if link.startswith("/") else os.path.normpath(
            os.path.join(os.path.dirname(relative), link))
        names |= _canonical(root, target)
    return names


def _wanted(relative: Path) -> bool:
    return not any(part in SKIP for part in relative.parts)


def _add(tar: tarfile.TarFile, root: Path, relative: str) -> None:
    """Add rootfs/relative (following usrmerge links like lib64 -> usr/lib64) with fixed metadata."""
    source = root / relative
    info = tar.gettarinfo(str(source), arcname=relative)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = MTIME
    if info.isreg():
        with source.open("rb") as handle:
            tar.addfile(info, handle)
    else:
        tar.addfile(info)


def _entries(root: Path) -> list[str]:
    # a shell, as the official image has one: `docker run --health-cmd` runs /bin/sh -c
    names = {PYTHON, "usr/bin/python3", "usr/bin/dash", "usr/bin/sh", *_libraries(root)}
    for path in (root / STDLIB).rglob("*"):
        relative = path.relative_to(root)
        if _wanted(relative.relative_to(STDLIB)) and (path.is_file() or path.is_symlink()):
            names.add(str(relative))
    # the usrmerge links (lib64 -> usr/lib64 ...) ldd's paths go through
    names |= {n for n in ("lib", "lib64", "bin", "sbin") if (root / n).is_symlink()}
    return sorted(names)


def _layer(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        entries = _entries(root)
        for name in entries:
            dirs |= {str(p) for p in Path(name).parents if str(p) != "."}
        links = {n for n in entries if (root / n).is_symlink() and "/" not in n}
        for name in sorted(dirs | {"tmp", "run", "etc", "root"}):
            if name in links or any(name.startswith(link + "/") for link in links):
                continue
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755, MTIME
            tar.addfile(info)
        for name in entries:
            if not any(name.startswith(link + "/") for link in links):
                _add(tar, root, name)
        for name, (data, mode) in sorted(_files().items()):
            info = tarfile.TarInfo(f"usr/{name}")
            info.size, info.mode, info.mtime = len(data), mode, MTIME
            tar.addfile(info, io.BytesIO(data))
        passwd = b"root:x:0:0:root:/root:/bin/sh\nollama:x:999:999::/usr/share/ollama:/bin/false\n"
        for name, data in (("etc/passwd", passwd), ("etc/group", b"root:x:0:\nollama:x:999:\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_image(root: Path) -> Image:
    """The image (config, one gzip layer, schema-2 manifest), deterministic for one rootfs."""
    raw = _layer(root)
    layer = gzip.compress(raw, compresslevel=6, mtime=0)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Env": [f"PATH={PATH}", "OLLAMA_HOST=0.0.0.0:11434"],
                   "Entrypoint": ["/usr/bin/ollama"], "Cmd": ["serve"],
                   "ExposedPorts": {"11434/tcp": {}},
                   "Labels": {"org.opencontainers.image.title": "ollama (coderig sandbox simulator)",
                              "org.opencontainers.image.version": VERSION}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "coderig-deploy sandbox"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST_V2,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config),
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest()},
        "layers": [{"mediaType": LAYER_TYPE, "size": len(layer),
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest()}],
    }, indent=3).encode()
    return Image(config, layer, manifest)


def push(registry_url: str, image: Image, tag: str = VERSION) -> str:
    """Push the image; return its pinned reference `<registry>/<repository>@sha256:<hex>`."""
    for blob in (image.config, image.layer):
        registry.push_blob(registry_url, REPOSITORY, "sha256:" + hashlib.sha256(blob).hexdigest(), blob)
    with registry._call("PUT", f"{registry_url}/v2/{REPOSITORY}/manifests/{tag}", image.manifest,
                        {"Content-Type": MANIFEST_V2}):
        pass
    return f"{registry_url.removeprefix('http://')}/{REPOSITORY}@{image.digest}"
