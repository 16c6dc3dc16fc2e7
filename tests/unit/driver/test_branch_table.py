"""Driver branches as data (issue 13, finding 1): the table, what each OS offers, and the
profile checks that use it. The Ubuntu paths are covered here, on the rendered variables."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from coderig_deploy.catalog import load_catalog
from coderig_deploy.cli import main
from coderig_deploy.driver_branches import (
    SUPPORTED_OS, arch_rows, branch_problem, branch_rows, default_branch, offer, offers,
)
from coderig_deploy.profiles import load_profile

class _VarsLoader(yaml.SafeLoader):
    """Reads Ansible's `!unsafe` as a plain string."""


_VarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))

PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+\-]+$")


def test_every_row_names_its_source_and_real_package_shapes() -> None:
    for row in branch_rows():
        assert row.os in SUPPORTED_OS and row.source.strip(), row
        assert row.status == "offered" or row.status == "too-old" or re.fullmatch(r"transitional:\d{3}", row.status)
        for field in (row.packages_open, row.packages_proprietary, row.signed_open, row.signed_proprietary):
            assert field == "-" or all(PACKAGE.match(n) for n in field.split(",")), row
    assert {"ampere", "ada", "hopper", "blackwell"} <= set(arch_rows())
    assert all(r.source for r in arch_rows().values())


def test_nvidia_repository_names_branches_until_590_then_a_pinning_package() -> None:
    o570 = offer("Debian 12", 570, "cuda-repo", True)
    assert o570.offered and o570.packages == ["nvidia-open-570"] and o570.pinning_package == ""
    assert offer("Debian 12", 570, "local-repo", False).packages == ["cuda-drivers-570"]
    o590 = offer("Ubuntu 24.04", 590, "cuda-repo", True)
    assert o590.packages == ["nvidia-open"] and o590.pinning_package == "nvidia-driver-pinning-590"


def test_ubuntu_archive_570_is_transitional_and_refused_with_the_reason() -> None:
    o = offer("Ubuntu 24.04", 570, "distro", True)
    assert not o.offered and o.packages == []
    assert o.reason == ("driver branch 570 is only a transitional package that installs branch 580 on "
                        "Ubuntu 24.04 from source distro (offered: 550, 580)")


def test_ubuntu_archive_580_comes_with_pre_signed_modules() -> None:
    o = offer("Ubuntu 22.04", 580, "distro", True)
    assert o.offered and o.packages == ["nvidia-driver-580-open"]
    assert o.signed_modules == ["linux-modules-nvidia-580-open-generic"]
    assert offer("Ubuntu 22.04", 580, "distro", False).signed_modules == ["linux-modules-nvidia-580-generic"]


def test_debian_archive_offers_no_branch_ollama_can_use() -> None:
    o = offer("Debian 12", 580, "distro", True)
    assert not o.offered and o.reason.endswith("from source distro (offered: none)")
    assert offer("Debian 12", 535, "distro", True).reason.startswith("driver branch 535 is too old for Ollama")


def test_blackwell_needs_570_and_every_architecture_defaults_to_580() -> None:
    assert branch_problem(550, "blackwell", "cuda-repo") is not None
    assert "570 or newer" in str(branch_problem(550, "blackwell", "cuda-repo"))
    assert branch_problem(550, "ada", "cuda-repo") is None
    assert {default_branch(a) for a in arch_rows()} == {580}


def _cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["coderig-deploy", *args])
    monkeypatch.delenv("CODERIG_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out + err


@pytest.mark.parametrize(("text", "message"), [
    ("extends: rtx5070ti-14b\ndriver: {branch: 550}\n",
     "driver branch 550 does not support blackwell GPUs: 570 or newer"),
    ("extends: budget-4070\ndriver: {branch: 600}\n", "driver branch 600 is offered by no supported OS"),
    ("extends: budget-4070\ndriver: {source: distro, branch: 570}\n",
     "driver branch 570 is offered by no supported OS from source distro (offered: 550, 580)"),
    ("extends: budget-4070\ndriver: {secure_boot: warn}\n", "secure_boot"),
])
def test_a_branch_no_os_offers_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    code, output = _cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert code == 2 and message in output and "Traceback" not in output, output


def test_a_profile_without_branch_gets_its_architecture_default(tmp_path: Path) -> None:
    shipped = yaml.safe_load((Path(__file__).parents[3] / "profiles" / "budget-4070.yaml").read_text())
    del shipped["driver"]["branch"]
    (tmp_path / "nobranch.yaml").write_text(yaml.safe_dump({**shipped, "name": "nobranch"}))
    profile = load_profile(tmp_path / "nobranch.yaml")
    assert profile.driver.branch == 580 and profile.driver.secure_boot == "refuse"


def test_rendered_variables_carry_each_os_offer_for_preflight_and_the_role(tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ubuntu-distro.yaml").write_text("extends: budget-4070\ndriver: {source: distro, branch: 580}\n")
    code, output = _cli(capsys, monkeypatch, "render", "--profile", "ubuntu-distro", "--profiles-dir",
                        str(tmp_path), "ws1", "-o", str(tmp_path / "rig"))
    assert code == 0, output
    group_vars = yaml.load((tmp_path / "rig" / "group_vars" / "all.yml").read_text(), Loader=_VarsLoader)
    assert group_vars["preflight_driver_offers"] == group_vars["nvidia_driver_offers"]
    noble = group_vars["nvidia_driver_offers"]["Ubuntu 24.04"]
    assert noble["offered"] and noble["packages"] == ["nvidia-driver-580-open"]
    assert noble["signed_modules"] == ["linux-modules-nvidia-580-open-generic"]
    assert not group_vars["nvidia_driver_offers"]["Debian 12"]["offered"]
    assert group_vars["preflight_secure_boot"] == "refuse" and group_vars["nvidia_driver_secure_boot"] == "refuse"
    assert offers(580, "distro", True)["Ubuntu 24.04"].model_dump() == noble


def test_the_dgx_spark_needs_580() -> None:
    # GB10 (cc 12.1) runs only on Ollama's CUDA 13 runner, and CUDA 13.0 needs driver 580 (driver_arch.tsv); the
    # RTX Blackwell cards' 570 would pass validation and fail at the driver step.
    assert load_catalog().gpu("dgx-spark").architecture == "blackwell-gb10"
    assert "580 or newer" in str(branch_problem(570, "blackwell-gb10", "cuda-repo"))
    assert branch_problem(580, "blackwell-gb10", "cuda-repo") is None


def test_turing_cards_take_the_ampere_branches() -> None:
    # Turing (cc 7.5) is the oldest architecture NVIDIA's open kernel modules and CUDA 13 support: 550+ as for
    # Ampere, 580 by default.
    assert {load_catalog().gpu(s).architecture for s in ("t4", "rtx-2080-ti", "quadro-rtx-8000")} == {"turing"}
    assert "550 or newer" in str(branch_problem(535, "turing", "cuda-repo"))
    assert branch_problem(550, "turing", "cuda-repo") is None and default_branch("turing") == 580
