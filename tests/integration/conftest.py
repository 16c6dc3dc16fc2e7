"""Session fixtures that boot real sandbox hosts (root, systemd-nspawn, debootstrap).

Every integration test that needs hosts boots its own lab through `sandbox_lab`:

    def test_x(sandbox_lab):
        lab = sandbox_lab([HostSpec(name="ws1", gpu="rtx-4090", count=2)], name="x")
        lab.ssh("ws1", "nvidia-smi -L")            # OpenSSH, host key checked
        lab.hosts()                                # name, ip, gpu, ... per host
        lab.key, lab.known_hosts, lab.inventory_path, lab.bridge_ip
        testinfra_host(lab, "ws1")                 # testinfra over paramiko, keys checked

Each lab has its own state directory (so its own bridge and /24), which keeps test
runs of different engineers on one machine apart. All labs are torn down at the
end of the session, also when a test fails; a session that was killed before its
teardown leaves its labs behind, and the next session tears them down (lab_owner.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from coderig_deploy.sandbox import HostSpec, Lab
from tests.integration.lab_owner import claim, sweep

LABS_ROOT = Path(os.environ.get("CODERIG_TEST_LABS", "/var/lib/coderig/test-labs"))

# The setup the provisioning tests need: two dual-4090 hosts and one 4070 host.
PROVISIONING_HOSTS = [
    HostSpec(name="big1", gpu="rtx-4090", count=2),
    HostSpec(name="big2", gpu="rtx-4090", count=2),
    HostSpec(name="small1", gpu="rtx-4070", count=1),
]

LabFactory = Callable[..., Lab]


def new_lab_home(name: str) -> Path:
    """A fresh, unique state directory (unique path = own bridge and subnet)."""
    LABS_ROOT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=LABS_ROOT))


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A scratch directory for one test module (keys, bundles, registries), deleted after its last test."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with tempfile.TemporaryDirectory(prefix=f"coderig-{name}-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def sandbox_lab() -> Iterator[LabFactory]:
    """Factory: `sandbox_lab(specs, name=...)` boots a lab and returns it (running)."""
    if os.geteuid() != 0:
        pytest.fail("integration tests boot sandbox hosts and must run as root")
    sweep(LABS_ROOT)
    labs: list[Lab] = []
    claims: list[int] = []

    def make(specs: list[HostSpec], name: str = "lab", timeout: float = 120.0) -> Lab:
        lab = Lab(new_lab_home(name))
        claims.append(claim(lab.home))
        labs.append(lab)
        lab.up(specs, timeout=timeout)
        return lab

    yield make
    for lab in labs:
        lab.down()
        _remove_home(lab.home)
    for fd in claims:
        os.close(fd)


def _remove_home(home: Path) -> None:
    for entry in home.iterdir() if home.is_dir() else []:
        entry.unlink()
    if home.is_dir():
        home.rmdir()


@pytest.fixture(scope="session")
def provisioning_lab(sandbox_lab: LabFactory) -> Lab:
    """One shared lab: big1, big2 (2x RTX 4090 each) and small1 (1x RTX 4070)."""
    return sandbox_lab(PROVISIONING_HOSTS, name="provisioning")


def testinfra_host(lab: Lab, name: str) -> Any:
    """A testinfra Host over paramiko whose client rejects unknown host keys.

    testinfra's paramiko backend only warns about unknown keys, so the client it
    would build is replaced by one loaded with the lab's known_hosts.
    """
    host = lab.host(name)
    tinfra = testinfra.get_host(f"paramiko://root@{host.ip}", ssh_identity_file=str(lab.key))
    tinfra.backend.__dict__["client"] = lab.paramiko(host)
    return tinfra


@pytest.fixture(scope="session")
def sandbox_testinfra() -> Callable[[Lab, str], Any]:
    """`sandbox_testinfra(lab, "ws1")` -> testinfra Host with host keys checked."""
    return testinfra_host
