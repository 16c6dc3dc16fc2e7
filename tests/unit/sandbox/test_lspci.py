"""The simulated lspci lists the cards the way pciutils does."""

from __future__ import annotations

import contextlib
import io
from types import ModuleType
from typing import Any

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import gpu_sim


def run(lspci: ModuleType, argv: list[str], doc: dict[str, Any], tmp_path, driver: bool) -> str:  # type: ignore[no-untyped-def]
    gpus = tmp_path / "gpus.json"
    gpus.write_text(__import__("json").dumps(doc))
    marker = tmp_path / "version"
    if driver:
        marker.write_text("NVRM")
    lspci.GPUS_JSON, lspci.DRIVER_MARKER = str(gpus), str(marker)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert lspci.main(argv) == 0
    return out.getvalue()


def test_nn_lines_for_two_4090(lspci: ModuleType, dual_4090: dict[str, Any], tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = run(lspci, ["-nn"], dual_4090, tmp_path, True).splitlines()
    assert lines[1:] == [
        "01:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 [GeForce RTX 4090] [10de:2684] (rev a1)",
        "02:00.0 VGA compatible controller [0300]: NVIDIA Corporation AD102 [GeForce RTX 4090] [10de:2684] (rev a1)",
    ]
    assert lines[0].startswith("00:00.0 Host bridge [0600]")


def test_vendor_filter_and_kernel_driver(lspci: ModuleType, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc = gpu_sim.gpus_document(load_catalog().gpu("rtx-4070"), 1, "t/x")
    with_driver = run(lspci, ["-k", "-d", "10de:"], doc, tmp_path, True)
    assert with_driver.splitlines() == [
        "01:00.0 VGA compatible controller: NVIDIA Corporation AD104 [GeForce RTX 4070] (rev a1)",
        "\tKernel driver in use: nvidia", "\tKernel modules: nvidia"]
    (tmp_path / "nodriver").mkdir()
    without = run(lspci, ["-k"], doc, tmp_path / "nodriver", False)
    assert "Kernel driver in use" not in without and "Kernel modules: nouveau" in without


@pytest.mark.parametrize("slug,expected", [("l40s", "Device 26b9"), ("rtx-5090", "Device 2b85")])
def test_ids_unknown_to_pci_ids_print_like_pciutils(slug: str, expected: str) -> None:
    doc = gpu_sim.gpus_document(load_catalog().gpu(slug), 1, "t/x")
    assert doc["gpus"][0]["lspci_name"] == expected


def test_a_dead_card_is_on_the_bus_but_not_seen_by_the_driver(lspci: ModuleType, smi: ModuleType,  # type: ignore[no-untyped-def]
                                                               tmp_path) -> None:
    """HostSpec(missing=1): lspci lists both cards, nvidia-smi lists one and cannot open the other."""
    from coderig_deploy.detect import parse

    doc = gpu_sim.gpus_document(load_catalog().gpu("rtx-4090"), 2, "t/dead", missing=1)
    assert [g["bus_id"] for g in doc["gpus"]] == ["00000000:01:00.0"]
    assert [g["bus_id"] for g in doc["missing_gpus"]] == ["00000000:02:00.0"]
    on_bus = run(lspci, ["-n"], doc, tmp_path, True)
    assert [d.bus_id for d in parse.lspci_n(on_bus)] == ["0000:01:00.0", "0000:02:00.0"]
    code, listed = smi.run(["-L"], doc, {})
    assert code == 0 and parse.lost_gpus(listed) == ["0000:02:00.0"] and listed.startswith("GPU 0: NVIDIA")
    code, csv = smi.run([f"--query-gpu={','.join(parse.SMI_FIELDS)}", "--format=csv,noheader,nounits"], doc, {})
    assert code == 0 and [g.bus_id for g in parse.nvidia_smi_csv(csv)] == ["0000:01:00.0"]
    assert "missing_gpus" not in gpu_sim.gpus_document(load_catalog().gpu("rtx-4090"), 2, "t/ok")
