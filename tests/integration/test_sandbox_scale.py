"""A lab of 20 hosts boots on a 2-CPU controller: each host is reachable over SSH with
its own host key checked, has its own address, and shows its own simulated GPUs.

No apply here (benchmarks/fleet_scale.py times provisioning at this size); the test
proves the sandbox itself holds a fleet: memory per host, the /24, boot parallelism,
one host key per host.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import HostSpec, Lab, ssh
from coderig_deploy.sandbox.state import HostState

pytestmark = pytest.mark.integration

FLEET = 20
# A mixed fleet, so a host answering with another host's GPUs would show.
KINDS = [("rtx-4070", 1), ("rtx-4090", 1), ("rtx-4090", 2)]
SPECS = [HostSpec(name=f"desk{n}", gpu=KINDS[n % 3][0], count=KINDS[n % 3][1]) for n in range(1, FLEET + 1)]
HOST_MEMORY_MAX = 256 * 2**20  # an idle host measured ~18 MiB; 20 must fit a small controller


@pytest.fixture(scope="module")
def fleet_lab(sandbox_lab) -> Lab:  # type: ignore[no-untyped-def]
    return sandbox_lab(SPECS, name="scale", timeout=300)


def probe(lab: Lab, host: HostState) -> dict[str, object]:
    """Over paramiko (unknown keys rejected): the key the host presented, its name, GPUs."""
    client = lab.paramiko(host)
    try:
        key = client.get_transport().get_remote_server_key()
        _, out, _ = client.exec_command("hostname; nvidia-smi --query-gpu=name,uuid --format=csv,noheader")
        lines = out.read().decode().splitlines()
    finally:
        client.close()
    return {"key": f"{key.get_name()} {key.get_base64()}", "hostname": lines[0], "gpus": lines[1:]}


def test_twenty_hosts_run_with_distinct_addresses(fleet_lab: Lab) -> None:
    hosts = fleet_lab.hosts()
    assert [h.name for h in hosts] == [s.name for s in SPECS]
    assert all(h.status == "running" and fleet_lab.is_up(h) for h in hosts)
    subnet = ipaddress.IPv4Network(fleet_lab.state.subnet)  # type: ignore[union-attr]
    addresses = {ipaddress.IPv4Address(h.ip) for h in hosts}
    assert len(addresses) == FLEET and all(a in subnet for a in addresses)
    for host in hosts:
        memory = fleet_lab.memory_bytes(host.name)
        assert memory is not None and 0 < memory < HOST_MEMORY_MAX, (host.name, memory)


def test_each_host_presents_its_own_checked_key_and_its_own_gpus(fleet_lab: Lab) -> None:
    hosts = fleet_lab.hosts()
    with ThreadPoolExecutor(max_workers=5) as pool:
        found = dict(zip([h.name for h in hosts], pool.map(lambda h: probe(fleet_lab, h), hosts), strict=True))
    catalog = load_catalog()
    for spec, host in zip(SPECS, hosts, strict=True):
        seen = found[host.name]
        assert host.host_key is not None and seen["key"] == " ".join(host.host_key.split()[:2])
        assert seen["hostname"] == host.name
        gpus = seen["gpus"]
        assert isinstance(gpus, list)
        assert [g.split(", ")[0] for g in gpus] == [catalog.gpu(spec.gpu or "").name] * spec.cards
    keys = {str(f["key"]) for f in found.values()}
    uuids = [g.split(", ")[1] for f in found.values() for g in f["gpus"]]  # type: ignore[attr-defined]
    assert len(keys) == FLEET and len(set(uuids)) == len(uuids) == sum(s.cards for s in SPECS)


def test_openssh_refuses_a_host_whose_key_does_not_match(fleet_lab: Lab, tmp_path: Path) -> None:
    """The checks above are not vacuous: desk1's address with desk2's key is refused."""
    desk1, desk2 = fleet_lab.host("desk1"), fleet_lab.host("desk2")
    assert desk2.host_key is not None
    key_type, key_b64 = desk2.host_key.split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{desk1.ip} {key_type} {key_b64}\n")
    refused = ssh.run(desk1.ip, fleet_lab.key, wrong, "true", timeout=30)
    assert refused.returncode == 255, refused.stderr
    assert "Host key verification failed" in refused.stderr or "HAS CHANGED" in refused.stderr
    accepted = fleet_lab.ssh(desk1, "nvidia-smi -L")
    assert accepted.returncode == 0 and accepted.stdout.count("GPU ") == SPECS[0].cards
