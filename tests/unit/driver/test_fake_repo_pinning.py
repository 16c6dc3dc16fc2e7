"""The sandbox's fake NVIDIA repository and the role's apt pin, checked with the controller's own
apt in a private state directory (nothing of the machine's apt is read or changed): the
repository reproduces the trap of issue 13 (asking for 570 brings 580/590), the role's
preferences file closes it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from coderig_deploy.resources import shipped_dir
from coderig_deploy.sandbox.fake_nvidia_repo import build

ROLE = shipped_dir("playbooks") / "roles" / "nvidia_driver"


@pytest.fixture(scope="module")
def apt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    base = tmp_path_factory.mktemp("apt")
    repos = build(base / "srv", base / "gnupg", kernel="6.1.0-99-amd64")
    for d in ("state/lists/partial", "cache/archives/partial", "prefs.d", "parts"):
        (base / d).mkdir(parents=True)
    (base / "status").write_text("")
    shutil.copy(repos.nvidia / "key.asc", base / "key.asc")
    (base / "sources.list").write_text(
        f"deb [signed-by={base}/key.asc] file:{repos.nvidia} ./\n"
        f"deb [signed-by={base}/key.asc] file:{repos.debian} bookworm main contrib\n")
    opts = [f"-oDir::State={base}/state", f"-oDir::State::status={base}/status", f"-oDir::Cache={base}/cache",
            f"-oDir::Etc::sourcelist={base}/sources.list", f"-oDir::Etc::sourceparts={base}/parts",
            f"-oDir::Etc::preferences={base}/none", f"-oDir::Etc::PreferencesParts={base}/prefs.d",
            "-oAPT::Architecture=amd64", "-oAPT::Sandbox::User=root", "-oDebug::NoLocking=1"]
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, check=False)
    assert update.returncode == 0 and "W:" not in update.stdout + update.stderr, update.stdout + update.stderr
    return base, opts


def simulate(opts: list[str], package: str) -> dict[str, str]:
    out = subprocess.run(["apt-get", *opts, "-s", "install", package], capture_output=True, text=True,
                         check=False).stdout
    return {line.split()[1]: line.split()[2].strip("(") for line in out.splitlines() if line.startswith("Inst ")}


def role_pin(branch: str) -> str:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    template = jinja2.Template((ROLE / "templates" / "coderig-nvidia-driver.pref.j2").read_text())
    return template.render(nvidia_driver_branch=branch,
                           nvidia_driver_apt_pin_packages=defaults["nvidia_driver_apt_pin_packages"])


def test_without_a_pin_asking_for_570_installs_newer_branches(apt: tuple[Path, list[str]]) -> None:
    base, opts = apt
    plan = simulate(opts, "nvidia-open-570")
    assert plan["nvidia-driver"] == "590.44.01-1"  # branchless name, ">=" dependency
    assert plan["libnvidia-compute-570"] == "580.95.05-1" and "libnvidia-compute-580" in plan  # transitional
    assert plan["nvidia-support"].startswith("20220217")  # contrib, with the Debian stand-in


def test_the_role_pin_keeps_every_driver_package_on_the_asked_branch(apt: tuple[Path, list[str]]) -> None:
    base, opts = apt
    (base / "prefs.d" / "coderig-nvidia-driver.pref").write_text(role_pin("570"))
    try:
        plan = simulate(opts, "nvidia-open-570")
    finally:
        (base / "prefs.d" / "coderig-nvidia-driver.pref").unlink()
    driver = {name: version for name, version in plan.items() if "nvidia" in name and name != "nvidia-support"}
    assert driver == {"nvidia-open-570": "570.195.03-1", "nvidia-driver": "570.195.03-1",
                      "libnvidia-compute-570": "570.195.03-1", "nvidia-kernel-open-dkms": "570.195.03-1"}
    assert {"dkms", "nvidia-support"} <= set(plan)


def test_590_comes_as_branchless_names_with_a_pinning_package(apt: tuple[Path, list[str]]) -> None:
    base, opts = apt
    (base / "prefs.d" / "coderig-nvidia-driver.pref").write_text(role_pin("590"))
    try:
        plan = simulate(opts, "nvidia-open")
        pinning = simulate(opts, "nvidia-driver-pinning-590")
    finally:
        (base / "prefs.d" / "coderig-nvidia-driver.pref").unlink()
    assert plan["nvidia-open"] == plan["nvidia-driver"] == "590.44.01-1"
    assert pinning == {"nvidia-driver-pinning-590": "590.44.01-1"}


def _agents(homedir: Path) -> list[int]:
    """Live gpg-agent processes started for `homedir` (their command line names it)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and str(homedir).encode() in b" ".join(argv):
            found.append(int(proc.name))
    return found


def test_signing_leaves_no_gpg_agent_running(tmp_path: Path) -> None:
    # gpg starts an agent per key directory and leaves it running; build() stops it, so labs and test runs do not
    # leave one daemon behind each.
    import time

    build(tmp_path / "srv", tmp_path / "gnupg", kernel="6.1.0-99-amd64")
    deadline = time.monotonic() + 10
    while _agents(tmp_path / "gnupg") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _agents(tmp_path / "gnupg")
