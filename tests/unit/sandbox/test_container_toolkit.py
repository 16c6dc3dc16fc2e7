"""The simulated NVIDIA Container Toolkit's scripts and the docker host's nspawn options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from coderig_deploy.sandbox import container_repo, hosts
from coderig_deploy.sandbox.state import GpuSetup, HostState

GPU = Path(container_repo.__file__).parent / "gpu"


def _host(docker: bool) -> HostState:
    return HostState(name="ws1", slot=0, ip="10.0.0.10", netns="ns", veth="v", cgroup="cg",
                     gpu=GpuSetup(), docker=docker)


def test_only_docker_hosts_get_dockers_capabilities(tmp_path: Path) -> None:
    paths = hosts.HostPaths(tmp_path, "ws1")
    plain, docker = hosts.nspawn_argv(_host(False), paths), hosts.nspawn_argv(_host(True), paths)
    assert not any("CAP_NET_ADMIN" in a or "system-call-filter" in a or "--bind" in a for a in plain)
    assert docker[:len(plain)] == plain
    assert docker[len(plain):] == ["--capability=CAP_NET_ADMIN", "--system-call-filter=@keyring bpf",
                                   f"--bind={tmp_path}/hosts/ws1/docker:/var/lib/docker"]
    assert "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY" not in hosts.launch_env(_host(False))
    assert hosts.launch_env(_host(True))["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] == "1"


def _run(script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GPU / script), *args], input=stdin, capture_output=True,
                          text=True, check=False)


def test_nvidia_ctk_adds_the_runtime_and_keeps_other_keys(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"insecure-registries": ["10.0.0.1:5000"]}))
    proc = _run("nvidia_ctk.py", "runtime", "configure", "--runtime=docker", f"--config={config}")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(config.read_text()) == {
        "insecure-registries": ["10.0.0.1:5000"],
        "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
    before = config.stat().st_mtime_ns
    assert _run("nvidia_ctk.py", "runtime", "configure", f"--config={config}").returncode == 0
    assert config.stat().st_mtime_ns == before  # nothing to change: not rewritten
    assert _run("nvidia_ctk.py", "runtime", "configure", "--runtime=crio", f"--config={config}").returncode == 1


def test_runtime_shim_adds_the_hook_only_for_gpu_containers(tmp_path: Path) -> None:
    sys.path.insert(0, str(GPU))
    try:
        import nvidia_container_runtime as shim  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(GPU))
    for env, hooked in ((["NVIDIA_VISIBLE_DEVICES=all"], True), (["PATH=/bin"], False)):
        (tmp_path / "config.json").write_text(json.dumps({"process": {"env": env}}))
        shim.add_hook(str(tmp_path))
        shim.add_hook(str(tmp_path))  # twice: still one hook
        spec = json.loads((tmp_path / "config.json").read_text())
        assert spec.get("hooks", {}).get("prestart", []) == ([
            {"path": "/usr/bin/nvidia-container-runtime-hook",
             "args": ["nvidia-container-runtime-hook", "prestart"]}] if hooked else [])


def test_hook_shows_only_the_visible_cards() -> None:
    sys.path.insert(0, str(GPU))
    try:
        import nvidia_container_runtime_hook as hook  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(GPU))
    cards = [{"index": i, "uuid": f"GPU-{i}"} for i in range(3)]
    assert hook.select({"gpus": [dict(c) for c in cards]}, "all")["gpus"] == cards
    picked = hook.select({"gpus": [dict(c) for c in cards]}, "2,GPU-0")["gpus"]
    assert picked == [{"index": 0, "uuid": "GPU-0"}, {"index": 1, "uuid": "GPU-2"}]
    assert hook.visible(["A=1", "NVIDIA_VISIBLE_DEVICES=void"]) == "void"
    assert hook.visible(["A=1"]) is None


def test_toolkit_package_carries_the_three_tools(tmp_path: Path) -> None:
    deb = container_repo.build_toolkit(tmp_path)
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for tool in ("nvidia-container-runtime-hook", "nvidia-container-runtime", "nvidia-ctk"):
        assert "-rwxr-xr-x root/root" in listing and f"./usr/bin/{tool}\n" in listing
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Package", "Version"], capture_output=True, text=True,
                            check=True).stdout
    assert fields == "Package: nvidia-container-toolkit\nVersion: 1.17.8-1\n"
