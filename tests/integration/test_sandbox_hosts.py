"""Booted sandbox hosts, proven over OpenSSH, paramiko/testinfra and Ansible.

The shared `provisioning_lab` (big1, big2: 2x RTX 4090; small1: 1x RTX 4070) is
booted once; the teardown tests boot their own small labs.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import HostSpec, Lab, cgroups, network, processes
from coderig_deploy.sandbox.hosts import HostPaths
from tests.integration.conftest import LABS_ROOT
from tests.integration.lab_owner import sweep

pytestmark = pytest.mark.integration

EXPECTED = {"big1": ("rtx-4090", 2), "big2": ("rtx-4090", 2), "small1": ("rtx-4070", 1)}
PYNVML = Path(paramiko.__file__).parents[1] / "pynvml.py"


def ok(lab: Lab, host: str, command: str, stdin: str | None = None) -> str:
    proc = lab.ssh(host, command, stdin=stdin)
    assert proc.returncode == 0, f"{host}: {command}: {proc.stderr or proc.stdout}"
    return proc.stdout


def test_three_hosts_booted_quickly_to_running(provisioning_lab: Lab) -> None:
    hosts = provisioning_lab.hosts()
    assert [h.name for h in hosts] == ["big1", "big2", "small1"]
    assert all(h.status == "running" for h in hosts)
    for host in hosts:
        assert ok(provisioning_lab, host.name, "systemctl is-system-running").strip() == "running"
        assert ok(provisioning_lab, host.name, "ps -p 1 -o comm=").strip() == "systemd"
    assert provisioning_lab.last_up_seconds is not None and provisioning_lab.last_up_seconds < 30


def test_hostnames_and_addresses_are_distinct(provisioning_lab: Lab) -> None:
    subnet = ipaddress.IPv4Network(provisioning_lab.state.subnet)  # type: ignore[union-attr]
    seen = set()
    for host in provisioning_lab.hosts():
        assert ok(provisioning_lab, host.name, "hostname").strip() == host.name
        addrs = json.loads(ok(provisioning_lab, host.name, "ip -j -4 addr show dev eth0"))
        (addr,) = [a["local"] for a in addrs[0]["addr_info"]]
        assert addr == host.ip and ipaddress.IPv4Address(addr) in subnet
        machine_id = ok(provisioning_lab, host.name, "cat /etc/machine-id").strip()
        seen.add((host.name, addr, machine_id))
    assert len({s[1] for s in seen}) == len({s[2] for s in seen}) == 3


def test_no_route_leaves_the_bridge(provisioning_lab: Lab) -> None:
    """Read every routing table (v4 and v6): no default route, nothing beyond the /24."""
    subnet = ipaddress.IPv4Network(provisioning_lab.state.subnet)  # type: ignore[union-attr]
    for host in provisioning_lab.hosts():
        v4 = json.loads(ok(provisioning_lab, host.name, "ip -j -4 route show table all"))
        v6 = json.loads(ok(provisioning_lab, host.name, "ip -j -6 route show table all"))
        assert v4 and v6
        assert not [r for r in v4 + v6 if r["dst"] == "default" or "gateway" in r]
        for route in v4:
            net = ipaddress.IPv4Network(route["dst"], strict=False)
            assert net.subnet_of(subnet) or net.is_loopback, route
        for route in v6:
            net = ipaddress.IPv6Network(route["dst"], strict=False)
            assert net.is_link_local or net.is_loopback or net.is_multicast, route


def test_nvidia_smi_csv_matches_the_requested_gpus(provisioning_lab: Lab) -> None:
    catalog = load_catalog()
    for name, (slug, count) in EXPECTED.items():
        spec = catalog.gpu(slug)
        out = ok(provisioning_lab, name, "nvidia-smi --query-gpu=index,name,uuid,memory.total,"
                 "memory.used,driver_version,compute_cap --format=csv,noheader,nounits")
        rows = [line.split(", ") for line in out.splitlines()]
        assert [r[0] for r in rows] == [str(i) for i in range(count)]
        assert {(r[1], r[3], r[5], r[6]) for r in rows} == {
            (spec.name, str(spec.vram_mib), "570.133.07", spec.compute_capability)}
        assert len({r[2] for r in rows}) == count
        # memory.used = the idle baseline + what the Ollama simulator has loaded on that GPU
        # (the lab is shared with the provisioning tests, so a model may be resident).
        gpus = json.loads(ok(provisioning_lab, name, "cat /etc/coderig-sim/gpus.json"))["gpus"]
        usage = json.loads(ok(provisioning_lab, name, "cat /run/coderig-sim/usage.json 2>/dev/null || echo '{}'"))
        loaded: dict[int, int] = {}
        for entry in usage.get("gpus", []):
            loaded[int(entry["index"])] = loaded.get(int(entry["index"]), 0) + int(entry["used_mib"])
        assert [int(r[4]) for r in rows] == [int(g.get("idle_used_mib", 0)) + loaded.get(int(g["index"]), 0)
                                             for g in gpus]
        with_units = ok(provisioning_lab, name, "nvidia-smi --query-gpu=memory.total --format=csv")
        assert with_units.splitlines() == ["memory.total [MiB]"] + [f"{spec.vram_mib} MiB"] * count
        listing = ok(provisioning_lab, name, "nvidia-smi -L").splitlines()
        assert listing[0].startswith(f"GPU 0: {spec.name} (UUID: GPU-")
    uuids = [ok(provisioning_lab, h, "nvidia-smi --query-gpu=uuid --format=csv,noheader")
             for h in EXPECTED]
    assert len(set("".join(uuids).split())) == 5


def test_memory_used_follows_the_simulators_usage_file(provisioning_lab: Lab) -> None:
    usage = {"gpus": [{"index": 1, "used_mib": 20357}],
             "processes": [{"pid": 4242, "name": "/usr/local/lib/ollama/llama-server",
                            "gpu_index": 1, "used_mib": 20357}]}
    ok(provisioning_lab, "big2", "mkdir -p /run/coderig-sim && cat > /run/coderig-sim/usage.json",
       stdin=json.dumps(usage))
    try:
        used = ok(provisioning_lab, "big2",
                  "nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits").split()
        assert used == ["1", "20358"]
        table = ok(provisioning_lab, "big2", "nvidia-smi")
        assert "20358MiB /  24564MiB" in table and "llama-server" in table
    finally:
        ok(provisioning_lab, "big2", "rm -f /run/coderig-sim/usage.json")
    assert ok(provisioning_lab, "big2", "nvidia-smi --query-gpu=memory.used "
              "--format=csv,noheader,nounits").split() == ["1", "1"]


def test_pynvml_runs_on_the_host_through_the_fake_library(provisioning_lab: Lab) -> None:
    ok(provisioning_lab, "big1", "mkdir -p /root/nvml && cat > /root/nvml/pynvml.py",
       stdin=PYNVML.read_text())
    script = ("import json, pynvml as n; n.nvmlInit(); hs = [n.nvmlDeviceGetHandleByIndex(i) "
              "for i in range(n.nvmlDeviceGetCount())]; print(json.dumps({'driver': "
              "n.nvmlSystemGetDriverVersion(), 'gpus': [[n.nvmlDeviceGetName(h), "
              "n.nvmlDeviceGetMemoryInfo(h).total // 2**20, list("
              "n.nvmlDeviceGetCudaComputeCapability(h))] for h in hs]}))")
    out = json.loads(ok(provisioning_lab, "big1", f'cd /root/nvml && python3 -c "{script}"'))
    assert out == {"driver": "570.133.07",
                   "gpus": [["NVIDIA GeForce RTX 4090", 24564, [8, 9]]] * 2}
    assert "libnvidia-ml.so.1" in ok(provisioning_lab, "big1", "ldconfig -p")


def test_driver_version_file_and_lspci(provisioning_lab: Lab) -> None:
    version = ok(provisioning_lab, "small1", "cat /proc/driver/nvidia/version")
    assert version.startswith("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.07")
    lspci = ok(provisioning_lab, "small1", "lspci -nn").splitlines()
    assert [line for line in lspci if "[10de:" in line] == [
        ("01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD104 [GeForce RTX 4070] "
         "[10de:2786] (rev a1)")]
    big = ok(provisioning_lab, "big1", "lspci -nn -d 10de:").splitlines()
    assert len(big) == 2 and all("[10de:2684]" in line for line in big)


def test_testinfra_over_paramiko_with_checked_host_keys(
        provisioning_lab: Lab, sandbox_testinfra: Callable[[Lab, str], Any]) -> None:
    for name in EXPECTED:
        host = sandbox_testinfra(provisioning_lab, name)
        assert host.check_output("hostname") == name
        assert host.service("ssh").is_running
        assert host.system_info.distribution == "debian"
        assert host.file("/etc/coderig-sim/gpus.json").exists
        assert host.file("/usr/bin/nvidia-smi").mode == 0o755
        assert host.run("systemctl is-system-running").stdout.strip() == "running"


def test_an_unknown_host_key_is_rejected(provisioning_lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text("")
    host = provisioning_lab.host("big1")
    client = paramiko.SSHClient()
    client.load_host_keys(str(tmp_path / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        client.connect(host.ip, username="root", key_filename=str(provisioning_lab.key),
                       allow_agent=False, look_for_keys=False, timeout=10)
    recorded = provisioning_lab.known_hosts.read_text()
    served = ok(provisioning_lab, "big1", "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1]
    assert f"{host.ip},big1 ssh-ed25519 {served}" in recorded


def test_ansible_reaches_every_host_through_the_inventory(provisioning_lab: Lab) -> None:
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "-i", str(provisioning_lab.inventory_path),
         "sandbox",
         "-m", "ansible.builtin.command", "-a", "cat /etc/hostname"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in EXPECTED:
        assert f"{name} | CHANGED | rc=0 >>\n{name}" in proc.stdout


def test_hosts_added_later_without_gpu_and_without_driver(provisioning_lab: Lab) -> None:
    added = provisioning_lab.up([HostSpec(name="plain1", count=0),
                                 HostSpec(name="raw1", gpu="rtx-3090", count=1,
                                          driver_installed=False)])
    try:
        assert [h.status for h in added] == ["running", "running"]
        for name in ("plain1", "raw1"):
            assert provisioning_lab.ssh(name, "command -v nvidia-smi").returncode == 1
            assert provisioning_lab.ssh(name, "test -e /proc/driver/nvidia/version").returncode == 1
        assert ok(provisioning_lab, "plain1", "lspci -nn -d 10de:") == ""
        assert "[10de:2204]" in ok(provisioning_lab, "raw1", "lspci -nn")
        assert json.loads(ok(provisioning_lab, "plain1", "cat /etc/coderig-sim/gpus.json"))[
            "gpus"] == []
    finally:
        assert sorted(provisioning_lab.down(["plain1", "raw1"])) == ["plain1", "raw1"]
    assert [h.name for h in provisioning_lab.hosts()] == ["big1", "big2", "small1"]
    assert "plain1" not in provisioning_lab.inventory_path.read_text()


# -- teardown ------------------------------------------------------------------------------

def traces(lab: Lab, recorded: Any = None) -> dict[str, list[str]]:
    """Everything of `lab` that could outlive it on the controller (as `recorded`, once its state is gone)."""
    st = recorded or lab.state
    assert st is not None
    hosts = list(st.hosts.values())
    mounts = Path("/proc/self/mounts").read_text()
    return {
        "processes": [str(p) for h in hosts for p in cgroups.pids(h.cgroup)],
        "mounts": [h.name for h in hosts if str(HostPaths(lab.home, h.name).root) in mounts],
        "netns": [h.netns for h in hosts if network.netns_exists(h.netns)],
        "links": [n for n in [st.bridge, *(h.veth for h in hosts)] if network.link_exists(n)],
        "cgroups": [str(d) for h in hosts for d in cgroups.host_dirs(h.cgroup) if d.exists()],
        "services": [s.name for s in st.services.values() if _running(s.pid, s.started)],
    }


def _running(pid: int, started: int | None) -> bool:
    """The recorded process is alive: a zombie is dead, only not yet reaped by its parent (init, for the
    services of a killed session)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return processes.is_same_process(pid, started) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_down_leaves_nothing_behind_even_after_a_crash(
        sandbox_lab: Callable[..., Lab]) -> None:
    lab = sandbox_lab([HostSpec(name="t1", gpu="rtx-4090", count=1), HostSpec(name="t2", count=0)],
                      name="teardown")
    before = traces(lab)
    assert len(before["processes"]) > 4 and len(before["mounts"]) == 2
    assert len(before["netns"]) == 2 and len(before["links"]) == 3 and before["cgroups"]
    assert sorted(before["services"]) == ["artifacts", "registry"]  # started by `up`
    state_copy = lab.state
    # A crash: t1's systemd-nspawn dies without a clean halt (its container lives on).
    crashed = lab.host("t1")
    assert crashed.pid is not None
    os.kill(crashed.pid, signal.SIGKILL)
    time.sleep(0.3)
    assert lab.down() == ["t1", "t2"]
    assert state_copy is not None
    leftovers = {k: v for k, v in _traces_of(lab, state_copy).items() if v}
    assert leftovers == {}
    assert lab.down() == []  # idempotent
    # Only down's own lock and the session's claim on the lab (conftest, lab_owner.py) remain.
    assert sorted(p.name for p in lab.home.iterdir()) == ["lock", "session.lock"]


def _traces_of(lab: Lab, recorded: Any) -> dict[str, list[str]]:
    """`traces` for a lab whose state file is gone: use the state recorded before down."""
    from coderig_deploy.sandbox import state as state_module

    state_module.save(recorded)
    try:
        return traces(lab)
    finally:
        state_module.state_path(lab.home).unlink()


KILLED_SESSION = """
from coderig_deploy.sandbox import HostSpec, Lab
from tests.integration.conftest import new_lab_home
from tests.integration.lab_owner import claim
lab = Lab(new_lab_home("killed"))
fd = claim(lab.home)
lab.up([HostSpec(name="k1", gpu="rtx-4070", count=1)])
print(lab.home, flush=True)
input()
"""


def test_a_killed_sessions_lab_is_torn_down_by_the_next_session(sandbox_lab: Callable[..., Lab]) -> None:
    # `sandbox_lab` swept at the start of this session; a session killed now leaves its lab running.
    child = subprocess.Popen([sys.executable, "-c", KILLED_SESSION], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    assert child.stdout is not None
    home = Path(child.stdout.readline().strip())
    child.kill()  # SIGKILL: no teardown runs
    child.wait()
    lab = Lab(home)
    recorded = lab.state
    assert recorded is not None and traces(lab)["processes"]
    swept = sweep(LABS_ROOT)
    assert home in swept
    assert not home.exists()
    leftovers = {k: v for k, v in traces(lab, recorded).items() if v}
    assert leftovers == {}
