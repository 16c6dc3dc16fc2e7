"""The simulated nvidia-smi: data-driven cases, the table, and a real consumer's parser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from coderig_deploy.bench import gpumem
from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import gpu_sim

CASES = Path(__file__).parent / "nvidia_smi"


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_case(case: str, smi: ModuleType, dual_4090: dict[str, Any]) -> None:
    spec = yaml.safe_load((CASES / f"{case}.yaml").read_text())
    code, out = smi.run(spec["argv"], dual_4090, spec["usage"] or {})
    assert (code, out) == (spec["exit"], spec["stdout"])


def test_without_cards_or_file_the_driver_is_not_reachable(smi: ModuleType,
                                                           dual_4090: dict[str, Any]) -> None:
    code, out = smi.run(["-L"], None, {})
    assert code == 9 and "couldn't communicate with the NVIDIA driver" in out
    assert smi.run(["-L"], {**dual_4090, "gpus": []}, {})[0] == 9


def test_table_layout_and_memory(smi: ModuleType, dual_4090: dict[str, Any]) -> None:
    usage = {"gpus": [{"index": 0, "used_mib": 20357}],
             "processes": [{"pid": 77, "name": "/usr/local/lib/ollama/llama-server",
                            "gpu_index": 0, "used_mib": 20357}]}
    lines = smi.table(dual_4090, usage, dual_4090["gpus"], now="Tue Nov 25 10:00:00 2025").splitlines()
    assert {len(line) for line in lines[1:]} == {91}
    assert "Driver Version: 570.133.07" in lines[2] and "CUDA Version: 12.8" in lines[2]
    memory_lines = [line for line in lines if "MiB /" in line]
    assert "20358MiB /  24564MiB" in memory_lines[0] and "1MiB /  24564MiB" in memory_lines[1]
    assert any("llama-server" in line and "20357MiB" in line for line in lines)


def test_table_truncates_long_names(smi: ModuleType) -> None:
    doc = gpu_sim.gpus_document(load_catalog().gpu("rtx-4070-ti-super"), 1, "t/x")
    table = smi.table(doc, {}, doc["gpus"], now="x")
    assert "NVIDIA GeForce RTX 4070 Ti..." in table
    assert "No running processes found" in table


def test_memory_used_never_exceeds_what_the_driver_does_not_reserve(
        smi: ModuleType, dual_4090: dict[str, Any]) -> None:
    usage = {"gpus": [{"index": 0, "used_mib": 10**6}]}
    assert smi.memory(dual_4090["gpus"][0], usage) == (24564, 24564 - 615, 0)


def test_reserved_memory_is_its_own_field(smi: ModuleType, dual_4090: dict[str, Any]) -> None:
    # As on the real H200 (real-gpu-notes.md): idle, used 0-ish, reserved apart, free the rest.
    argv = ["--query-gpu=memory.total,memory.reserved,memory.used,memory.free",
            "--format=csv,noheader,nounits"]
    assert smi.run(argv, dual_4090, {}) == (0, "24564, 615, 1, 23948\n" * 2)


@pytest.mark.parametrize("fmt", ["csv", "csv,noheader", "csv,nounits", "csv,noheader,nounits"])
def test_the_benchmark_parser_reads_every_format(smi: ModuleType, dual_4090: dict[str, Any],
                                                 fmt: str) -> None:
    usage = {"gpus": [{"index": 1, "used_mib": 5000}]}
    argv = ["--query-gpu=" + ",".join(gpumem.QUERY_FIELDS), f"--format={fmt}"]
    code, out = smi.run(argv, dual_4090, usage)
    parsed = gpumem.parse_query_gpu(out)
    assert code == 0
    assert [(g.index, g.total_mib, g.used_mib) for g in parsed] == [(0, 24564, 1), (1, 24564, 5001)]


def test_the_installed_script_runs_with_plain_python3(dual_4090: dict[str, Any], write_doc) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "CODERIG_SIM_GPUS": str(write_doc("gpus.json", dual_4090)),
           "CODERIG_SIM_USAGE": "/nonexistent/usage.json"}
    proc = subprocess.run(["/usr/bin/python3", "-I", str(gpu_sim.GPU_DIR / "nvidia_smi.py"),
                           "--query-gpu=name,memory.used", "--format=csv,noheader"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "NVIDIA GeForce RTX 4090, 1 MiB\n" * 2
    assert sys.version_info >= (3, 11)
