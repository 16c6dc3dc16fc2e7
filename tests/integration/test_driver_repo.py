"""The driver role against real apt (issue 13): a fake NVIDIA repository and a Debian stand-in on
the lab's artifact server (sandbox/fake_nvidia_repo.py), a booted Debian 12 host with the cards
but no driver. The install ends in "reboot required" (sandbox hosts do not reboot, and the
packages are empty), which is where each test reads what apt did.

The tests share one host and run in file order: install, rerun, refusals, Secure Boot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.sandbox import HostSpec, Lab, secure_boot, services

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")
HOST = "drv1"
REBOOT = "reboot required: driver branch 570 is installed but not loaded"
# What "nothing changed" compares: apt's configuration, dpkg's database, the MOK files.
SNAPSHOT = ("md5sum /var/lib/dpkg/status; ls -la --time-style=full-iso /etc/apt/preferences.d "
            "/etc/apt/sources.list.d /etc/modprobe.d; ls /var/lib/dkms 2>&1; ls /var/lib/coderig-sim/mok 2>&1")


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    """One host without driver whose Debian sources are a default install (main, non-free-firmware)
    of the lab's Debian stand-in: contrib is off, as on a fresh Debian 12."""
    lab = sandbox_lab([HostSpec(name=HOST, gpu="rtx-4070", count=1, driver_installed=False)], name="driver")
    debian = services.urls(lab)["debian_mirror_url"]
    key = (lab.home / "services" / "artifacts" / "apt" / "debian" / "key.asc").read_text()
    lab.ssh(HOST, "rm -f /etc/apt/sources.list && install -d /etc/apt/keyrings "
                  "&& cat > /etc/apt/keyrings/coderig-sandbox-debian.asc", stdin=key)
    lab.ssh(HOST, "cat > /etc/apt/sources.list.d/debian.sources",
            stdin=f"Types: deb\nURIs: {debian}\nSuites: bookworm\nComponents: main non-free-firmware\n"
                  "Signed-By: /etc/apt/keyrings/coderig-sandbox-debian.asc\n")
    return lab


def apply(lab: Lab, tmp_path: Path, driver: str) -> tuple[int, dict[str, Any], Path]:
    """`apply --sandbox` of budget-4070 (branch 570) from the lab's NVIDIA stand-in, `driver` added."""
    nvidia = services.urls(lab)["nvidia_repo_url"]
    profiles = tmp_path / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "drv.yaml").write_text(
        f"extends: budget-4070\ndriver:\n  source: local-repo\n  local_repo_url: {nvidia}\n"
        f"  local_repo_key_url: {nvidia}/key.asc\n  repo_key_fingerprint: {services.apt_key_pin(lab)}\n{driver}")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, "apply", "--json", "--no-bench", "--runs-dir", str(tmp_path / "runs"),
                           "--profile", "drv", "--profiles-dir", str(profiles), "--sandbox"],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    doc = json.loads(proc.stdout)
    (host,) = doc["hosts"]
    return proc.returncode, host, Path(doc["run_dir"])


def installed(lab: Lab, *names: str) -> dict[str, str]:
    out = lab.ssh(HOST, "dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\\n' " + " ".join(names)).stdout
    return {line.split()[1]: line.split()[2] for line in out.splitlines() if line.startswith("ii")}


def test_a_branch_the_repository_lacks_stops_before_the_pin_and_any_package(lab: Lab, tmp_path: Path) -> None:
    """575 is in NVIDIA's table for Debian 12, but this repository does not carry it."""
    status = lab.ssh(HOST, "md5sum /var/lib/dpkg/status").stdout
    code, host, _ = apply(lab, tmp_path, "  branch: 575\n")
    assert code == 1 and host["failed_role"] == "nvidia_driver", host
    assert "the driver repository (local-repo) offers no nvidia-open-575 for branch 575: nothing was installed" \
        in host["reason"], host
    assert lab.ssh(HOST, "md5sum /var/lib/dpkg/status").stdout == status
    assert lab.ssh(HOST, "ls /etc/apt/preferences.d/coderig-nvidia-driver.pref "
                         "/etc/apt/sources.list.d/coderig-debian-contrib.sources 2>&1").stdout.count("No such") == 2


def test_missing_headers_for_the_running_kernel_stop_before_the_driver(lab: Lab, tmp_path: Path) -> None:
    hide = "/etc/apt/preferences.d/zz-test-no-headers.pref"
    lab.ssh(HOST, f"cat > {hide}", stdin="Package: linux-headers-*\nPin: version *\nPin-Priority: -1\n")
    try:
        code, host, _ = apply(lab, tmp_path, "")
    finally:
        lab.ssh(HOST, f"rm -f {hide}")
    kernel = lab.ssh(HOST, "uname -r").stdout.strip()
    assert code == 1 and host["failed_role"] == "nvidia_driver", host
    assert f"linux-headers-{kernel} (the running kernel) is not available from the host's apt sources" \
        in host["reason"], host
    assert installed(lab, "nvidia-open-570", "nvidia-driver", "dkms") == {}


def test_the_asked_branch_is_installed_not_the_newer_one_a_dependency_offers(lab: Lab, tmp_path: Path) -> None:
    code, host, _ = apply(lab, tmp_path, "")
    assert code == 1 and host["failed_role"] == "nvidia_driver" and REBOOT in host["reason"], host
    assert installed(lab, "nvidia-open-570", "nvidia-driver", "libnvidia-compute-570", "nvidia-kernel-open-dkms") == {
        "nvidia-open-570": "570.195.03-1", "nvidia-driver": "570.195.03-1",
        "libnvidia-compute-570": "570.195.03-1", "nvidia-kernel-open-dkms": "570.195.03-1"}
    assert installed(lab, "libnvidia-compute-580", "libnvidia-compute-590") == {}
    assert "Pin: version 570.*" in lab.ssh(HOST, "cat /etc/apt/preferences.d/coderig-nvidia-driver.pref").stdout
    # The trap is real: without coderig's preferences apt would move the branchless nvidia-driver to 590.
    unpinned = lab.ssh(HOST, "apt-get -s -o Dir::Etc::PreferencesParts=/nonexistent install nvidia-driver").stdout
    assert "Inst nvidia-driver [570.195.03-1] (590.44.01-1" in unpinned, unpinned


def test_on_debian_contrib_is_enabled_and_headers_and_dkms_come_before_the_driver(lab: Lab) -> None:
    sources = lab.ssh(HOST, "cat /etc/apt/sources.list.d/coderig-debian-contrib.sources").stdout
    assert "Components: contrib\n" in sources and f"URIs: {services.urls(lab)['debian_mirror_url']}\n" in sources
    assert "Components: main non-free-firmware" in lab.ssh(HOST, "cat /etc/apt/sources.list.d/debian.sources").stdout
    kernel = lab.ssh(HOST, "uname -r").stdout.strip()
    assert set(installed(lab, "nvidia-support", "dkms", f"linux-headers-{kernel}")) == {
        "nvidia-support", "dkms", f"linux-headers-{kernel}"}
    order = [line.split()[3].split(":")[0] for line in
             lab.ssh(HOST, "grep ' install ' /var/log/dpkg.log").stdout.splitlines()]
    assert order.index(f"linux-headers-{kernel}") < order.index("nvidia-kernel-open-dkms"), order
    assert order.index("dkms") < order.index("nvidia-kernel-open-dkms"), order


def test_a_rerun_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    code, host, _ = apply(lab, tmp_path, "")
    assert code == 1 and REBOOT in host["reason"] and host["changed"] == 0, host


def test_a_branch_the_os_does_not_offer_is_refused_before_any_change(lab: Lab, tmp_path: Path) -> None:
    profile_dir = tmp_path / "profiles"
    profile_dir.mkdir()
    (profile_dir / "drv.yaml").write_text("extends: budget-4070\ndriver: {source: distro, branch: 580}\n")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    before = lab.ssh(HOST, SNAPSHOT).stdout
    proc = subprocess.run([CLI, "apply", "--json", "--no-bench", "--runs-dir", str(tmp_path / "runs2"),
                           "--profile", "drv", "--profiles-dir", str(profile_dir), "--sandbox"],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    (host,) = json.loads(proc.stdout)["hosts"]
    assert proc.returncode == 1 and host["failed_role"] == "preflight", host
    assert "driver branch 580 is not offered on Debian 12 from source distro (offered: none)" in host["reason"]
    assert lab.ssh(HOST, SNAPSHOT).stdout == before


def test_secure_boot_refuses_an_unsigned_module_before_any_change(lab: Lab, tmp_path: Path) -> None:
    secure_boot.enable(lab, HOST)
    before = lab.ssh(HOST, SNAPSHOT).stdout
    code, host, _ = apply(lab, tmp_path, "")
    assert code == 1 and host["failed_role"] == "preflight", host
    assert "Secure Boot is enabled and driver branch 570 must be installed from local-repo" in host["reason"]
    assert "set driver.secure_boot: sign" in host["reason"]
    assert lab.ssh(HOST, SNAPSHOT).stdout == before


def test_sign_stages_a_mok_and_the_report_says_to_confirm_it_at_the_console(lab: Lab, tmp_path: Path) -> None:
    code, host, run_dir = apply(lab, tmp_path, "  secure_boot: sign\n")
    assert code == 1 and host["failed_role"] == "nvidia_driver" and REBOOT in host["reason"], host
    assert "MOK /var/lib/dkms/mok.pub is staged for enrollment" in host["reason"]
    assert "someone must confirm it at the console" in host["reason"]
    staged = lab.ssh(HOST, f"cmp {secure_boot.STAGED} /var/lib/dkms/mok.pub && echo same").stdout
    assert staged.strip() == "same"
    assert "confirm it at the console" in (run_dir / "report.md").read_text()
    code, host, _ = apply(lab, tmp_path, "  secure_boot: sign\n")
    assert code == 1 and host["changed"] == 0 and "staged for enrollment" in host["reason"], host
