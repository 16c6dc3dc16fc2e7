"""The C libnvidia-ml.so.1, built with gcc, answers the real pynvml (nvidia-ml-py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.sandbox import gpu_sim

PROBE = """
import json, pynvml as n
n.nvmlInit()
out = {"driver": n.nvmlSystemGetDriverVersion(), "cuda": n.nvmlSystemGetCudaDriverVersion(),
       "gpus": []}
for i in range(n.nvmlDeviceGetCount()):
    h = n.nvmlDeviceGetHandleByIndex(i)
    m = n.nvmlDeviceGetMemoryInfo(h)
    out["gpus"].append({"name": n.nvmlDeviceGetName(h), "uuid": n.nvmlDeviceGetUUID(h),
        "total": m.total, "used": m.used, "free": m.free,
        "cc": list(n.nvmlDeviceGetCudaComputeCapability(h)),
        "bus": n.nvmlDeviceGetPciInfo(h).busId, "index": n.nvmlDeviceGetIndex(
            n.nvmlDeviceGetHandleByUUID(n.nvmlDeviceGetUUID(h))),
        "procs": [[p.pid, p.usedGpuMemory] for p in n.nvmlDeviceGetComputeRunningProcesses(h)]})
try:
    n.nvmlDeviceGetHandleByIndex(99)
except n.NVMLError as e:
    out["bad_index"] = str(e)
n.nvmlShutdown()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def libdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ.setdefault("CODERIG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    lib = gpu_sim.build_libnvml()
    directory = tmp_path_factory.mktemp("lib")
    (directory / "libnvidia-ml.so.1").symlink_to(lib)
    return directory


def probe(libdir: Path, gpus: Path, usage: Path, code: str = PROBE) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(libdir), "CODERIG_SIM_GPUS": str(gpus),
           "CODERIG_SIM_USAGE": str(usage)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)


def test_pynvml_sees_the_simulated_cards(libdir: Path, dual_4090: dict[str, Any],
                                         tmp_path: Path) -> None:
    (tmp_path / "gpus.json").write_text(json.dumps(dual_4090))
    (tmp_path / "usage.json").write_text(json.dumps({
        "gpus": [{"index": 1, "used_mib": 8192}],
        "processes": [{"pid": 31337, "name": "llama-server", "gpu_index": 1, "used_mib": 8192}]}))
    proc = probe(libdir, tmp_path / "gpus.json", tmp_path / "usage.json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    mib = 1024 * 1024
    assert out["driver"] == "570.133.07" and out["cuda"] == 12080
    assert [g["name"] for g in out["gpus"]] == ["NVIDIA GeForce RTX 4090"] * 2
    assert [g["uuid"] for g in out["gpus"]] == [g["uuid"] for g in dual_4090["gpus"]]
    assert [g["index"] for g in out["gpus"]] == [0, 1]
    # NVML v1 counts the driver's 615 reserved MiB as used, as a real driver does.
    assert [(g["total"] // mib, g["used"] // mib) for g in out["gpus"]] == [(24564, 616), (24564, 8808)]
    assert all(g["total"] == g["used"] + g["free"] for g in out["gpus"])
    assert out["gpus"][0]["cc"] == [8, 9] and out["gpus"][1]["bus"] == "00000000:02:00.0"
    assert out["gpus"][0]["procs"] == [] and out["gpus"][1]["procs"] == [[31337, 8192 * mib]]
    assert out["bad_index"] == "Invalid Argument"


def test_without_gpus_json_the_driver_is_not_loaded(libdir: Path, tmp_path: Path) -> None:
    code = "import pynvml as n\ntry:\n n.nvmlInit()\nexcept n.NVMLError_DriverNotLoaded as e:\n print(e)"
    proc = probe(libdir, tmp_path / "missing.json", tmp_path / "usage.json", code)
    assert proc.stdout.strip() == "Driver Not Loaded", proc.stderr


def test_calls_before_init_are_uninitialized(libdir: Path, dual_4090: dict[str, Any],
                                             tmp_path: Path) -> None:
    (tmp_path / "gpus.json").write_text(json.dumps(dual_4090))
    code = ("import ctypes\nlib = ctypes.CDLL('libnvidia-ml.so.1')\nc = ctypes.c_uint()\n"
            "print(lib.nvmlDeviceGetCount_v2(ctypes.byref(c)), lib.nvmlInit_v2(),"
            " lib.nvmlDeviceGetCount_v2(ctypes.byref(c)), c.value)")
    proc = probe(libdir, tmp_path / "gpus.json", tmp_path / "usage.json", code)
    assert proc.stdout.split() == ["1", "0", "0", "2"], proc.stderr


V2 = """
import json, pynvml as n
n.nvmlInit()
h = n.nvmlDeviceGetHandleByIndex(0)
m = n.nvmlDeviceGetMemoryInfo(h, version=n.nvmlMemory_v2)
out = {"v2": [m.total, m.reserved, m.used, m.free], "v1_used": n.nvmlDeviceGetMemoryInfo(h).used}
try:
    n.nvmlDeviceGetMemoryInfo(h, version=n.nvmlMemory_v2 + 1)
except n.NVMLError as e:
    out["bad_version"] = str(e)
print(json.dumps(out))
"""


def test_v2_reports_reserved_apart_like_a_real_driver(libdir: Path, dual_4090: dict[str, Any],
                                                      tmp_path: Path) -> None:
    (tmp_path / "gpus.json").write_text(json.dumps(dual_4090))
    proc = probe(libdir, tmp_path / "gpus.json", tmp_path / "missing.json", V2)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    mib = 1024 * 1024
    assert [v // mib for v in out["v2"]] == [24564, 615, 1, 24564 - 615 - 1]
    assert out["v1_used"] == out["v2"][2] + out["v2"][1]
    assert out["bad_version"] == "Argument Version Mismatch"


BOTH_PATHS = """
import json
from coderig_deploy.bench import gpumem
print(json.dumps([gpumem.probe("pynvml"), gpumem.probe("nvidia-smi")]))
"""


def test_both_probe_paths_report_the_same_memory(libdir: Path, dual_4090: dict[str, Any],
                                                 tmp_path: Path) -> None:
    # The disagreement seen on a real H200 (nvidia-smi 0 MiB used, pynvml v1 615 MiB) is
    # reproduced by the simulated driver; the probe must read the same figures either way.
    (tmp_path / "gpus.json").write_text(json.dumps(dual_4090))
    (tmp_path / "usage.json").write_text(json.dumps({"gpus": [{"index": 1, "used_mib": 8192}]}))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "nvidia-smi").symlink_to(gpu_sim.GPU_DIR / "nvidia_smi.py")
    env = {**os.environ, "LD_LIBRARY_PATH": str(libdir), "PATH": f"{bindir}:/usr/bin:/bin",
           "CODERIG_SIM_GPUS": str(tmp_path / "gpus.json"),
           "CODERIG_SIM_USAGE": str(tmp_path / "usage.json")}
    proc = subprocess.run([sys.executable, "-c", BOTH_PATHS], capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    nvml, smi = json.loads(proc.stdout)
    assert (nvml["source"], nvml["memory_api"], nvml["error"]) == ("pynvml", "nvml-v2", None)
    assert (smi["source"], smi["memory_api"], smi["error"]) == ("nvidia-smi", "nvidia-smi", None)
    figures = [[(g["total_mib"], g["used_mib"], g["reserved_mib"], g["usable_mib"])
                for g in result["gpus"]] for result in (nvml, smi)]
    assert figures[0] == figures[1] == [(24564, 1, 615, 23949), (24564, 8193, 615, 23949)]
