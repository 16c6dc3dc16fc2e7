"""`nvidia-smi -pm 1` on a simulated host: the nvidia_driver role turns persistence mode on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[3] / "coderig_deploy" / "sandbox" / "gpu" / "nvidia_smi.py"
DOC = {"driver_version": "570.133.07", "gpus": [
    {"index": i, "bus_id": f"00000000:0{i + 1}:00.0", "name": "NVIDIA GeForce RTX 4090", "uuid": f"GPU-{i}",
     "pci_device_id": "2684", "memory_total_mib": 24576, "compute_cap": "8.9"} for i in range(2)]}


def smi(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    gpus = tmp_path / "gpus.json"
    gpus.write_text(json.dumps(DOC))
    env = {**os.environ, "CODERIG_SIM_GPUS": str(gpus), "CODERIG_SIM_USAGE": str(tmp_path / "usage.json"),
           "CODERIG_SIM_PERSISTENCE": str(tmp_path / "run" / "persistence-mode")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=30)


def test_persistence_mode_is_off_until_enabled_and_stays_on(tmp_path):
    (tmp_path / "run").mkdir()
    query = ("--query-gpu=persistence_mode", "--format=csv,noheader")
    assert smi(tmp_path, *query).stdout.split() == ["Disabled", "Disabled"]
    r = smi(tmp_path, "-pm", "1")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["Enabled persistence mode for GPU 00000000:01:00.0.",
                                     "Enabled persistence mode for GPU 00000000:02:00.0.", "All done."]
    assert smi(tmp_path, *query).stdout.split() == ["Enabled", "Enabled"]


def test_persistence_mode_needs_a_writable_driver_state(tmp_path):
    r = smi(tmp_path, "-pm", "1")  # the state directory does not exist: like a non-root caller
    assert r.returncode == 4 and "Insufficient Permissions" in r.stdout


def test_bad_persistence_value_is_rejected(tmp_path):
    r = smi(tmp_path, "-pm", "yes")
    assert r.returncode == 2 and "Invalid combination" in r.stdout
