"""gpus.json from the catalog, and what `install` puts into a host's root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.errors import UnknownNameError
from coderig_deploy.sandbox import gpu_sim
from coderig_deploy.sandbox.lab import load_gpu


def test_document_follows_the_catalog() -> None:
    spec = load_catalog().gpu("rtx-4070")
    doc = gpu_sim.gpus_document(spec, 1, "lab/small1")
    (gpu,) = doc["gpus"]
    assert gpu["name"] == spec.name == "NVIDIA GeForce RTX 4070"
    assert gpu["memory_total_mib"] == spec.vram_mib
    assert gpu["compute_cap"] == "8.9" and gpu["pci_device_id"] == "2786"
    assert gpu["lspci_name"] == "AD104 [GeForce RTX 4070]"
    assert doc["driver_version"] == "570.133.07" and doc["open_kernel_module"] is True


def test_uuids_are_stable_per_host_and_distinct() -> None:
    spec = load_catalog().gpu("rtx-4090")
    a = [g["uuid"] for g in gpu_sim.gpus_document(spec, 2, "lab/big1")["gpus"]]
    b = [g["uuid"] for g in gpu_sim.gpus_document(spec, 2, "lab/big2")["gpus"]]
    assert a == [g["uuid"] for g in gpu_sim.gpus_document(spec, 2, "lab/big1")["gpus"]]
    assert len(set(a + b)) == 4 and all(u.startswith("GPU-") and len(u) == 40 for u in a)


def test_no_gpu_host_has_an_empty_list() -> None:
    assert gpu_sim.gpus_document(None, 0, "lab/x")["gpus"] == []


def test_unknown_slug_is_a_user_error() -> None:
    with pytest.raises(UnknownNameError, match="rtx-4091"):
        load_gpu("rtx-4091")


def test_proc_version_uses_the_open_module_wording() -> None:
    first = gpu_sim.proc_version_text().splitlines()[0]
    assert first.startswith("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.07  ")


def test_install_with_and_without_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODERIG_CACHE_DIR", str(tmp_path / "cache"))
    doc = gpu_sim.gpus_document(load_catalog().gpu("rtx-4090"), 1, "lab/a")
    with_driver, bare = tmp_path / "a", tmp_path / "b"
    gpu_sim.install(with_driver, doc, driver_installed=True)
    gpu_sim.install(bare, doc, driver_installed=False)
    assert json.loads((with_driver / "etc/coderig-sim/gpus.json").read_text()) == doc
    assert os.access(with_driver / "usr/bin/nvidia-smi", os.X_OK)
    assert (with_driver / gpu_sim.LIB_PATH).is_file()
    assert (with_driver / gpu_sim.PROC_DRIVER_DIR / "nvidia/version").is_file()
    unit = with_driver / "etc/systemd/system/sysinit.target.wants" / gpu_sim.DRIVER_UNIT
    assert os.readlink(unit) == f"/etc/systemd/system/{gpu_sim.DRIVER_UNIT}"
    assert (bare / "usr/bin/lspci").is_file() and (bare / "etc/coderig-sim/gpus.json").is_file()
    assert not (bare / "usr/bin/nvidia-smi").exists() and not (bare / gpu_sim.LIB_PATH).exists()
