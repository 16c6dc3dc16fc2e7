"""nvidia-smi CSV parsing against fixtures of real output shapes, and the probe's fallbacks."""

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pynvml  # type: ignore[import-untyped]
import pytest

from coderig_deploy.bench import gpumem
from coderig_deploy.errors import BenchError

FIXTURES = Path(__file__).parent / "nvidia_smi"
CASES = sorted(p.stem for p in FIXTURES.glob("*.txt"))


@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str) -> None:
    text = (FIXTURES / f"{case}.txt").read_text()
    expected = json.loads((FIXTURES / f"{case}.json").read_text())
    # Captures of the five-field query; a header line names its own fields.
    assert [g.as_dict() for g in gpumem.parse_query_gpu(text, gpumem.LEGACY_FIELDS)] == expected


def test_gib_units_are_converted() -> None:
    (gpu,) = gpumem.parse_query_gpu("0, X, GPU-1, 24 GiB, 1.5 GiB, 0.5 GiB\n")
    assert (gpu.total_mib, gpu.used_mib, gpu.reserved_mib, gpu.usable_mib) == (24576, 1536, 512, 24064)


def test_wrong_field_count_is_an_error() -> None:
    with pytest.raises(BenchError, match="expected 6 fields"):
        gpumem.parse_query_gpu("0, NVIDIA GeForce RTX 4090, 24564\n")


def _fake_smi(tmp_path: Path, body: str) -> str:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_driver_library_mismatch_says_reboot(tmp_path: Path) -> None:
    smi = _fake_smi(tmp_path, "echo 'Failed to initialize NVML: Driver/library version mismatch'; exit 18")
    with pytest.raises(BenchError, match="exit 18.*reboot the host"):
        gpumem.read_nvidia_smi(smi)


def test_missing_nvidia_smi_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = gpumem.probe("nvidia-smi")
    assert result["gpus"] == [] and "not installed" in result["error"]


def test_probe_passes_our_query_and_parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The fake prints a line only when called with exactly the documented query.
    expected = " ".join(gpumem.NVIDIA_SMI_ARGS)
    _fake_smi(tmp_path, f'[ "$*" = "{expected}" ] || exit 9\n'
                        'echo "0, NVIDIA GeForce RTX 4090, GPU-1, 24564, 1200, 434"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    result = gpumem.probe("nvidia-smi")
    assert result["error"] is None and result["source"] == "nvidia-smi"
    assert result["memory_api"] == "nvidia-smi"
    assert result["gpus"][0] | {"name": "-"} == {
        "index": 0, "name": "-", "uuid": "GPU-1", "total_mib": 24564, "used_mib": 1200,
        "reserved_mib": 434, "usable_mib": 24130}


def test_a_driver_without_memory_reserved_is_asked_again_without_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    new, old = (" ".join(args) for args in (gpumem.NVIDIA_SMI_ARGS, gpumem.LEGACY_ARGS))
    _fake_smi(tmp_path, f'if [ "$*" = "{new}" ]; then\n'
                        '  echo \'Field "memory.reserved" is not a valid field to query.\'; exit 2\nfi\n'
                        f'[ "$*" = "{old}" ] || exit 9\n'
                        'echo "0, Quadro RTX 6000, GPU-2, 24576, 300"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    result = gpumem.probe("nvidia-smi")
    assert result["error"] is None
    assert [(g["used_mib"], g["reserved_mib"], g["usable_mib"]) for g in result["gpus"]] == [(300, None, None)]


def test_pynvml_without_a_driver_is_an_error_not_a_crash() -> None:
    # nvidia-ml-py is installed in the venv; this machine has no libnvidia-ml.so.1.
    result = gpumem.probe("pynvml")
    assert result["source"] == "pynvml"
    if result["gpus"]:  # a machine with a real GPU: the figures must be sane
        assert all(g["total_mib"] > 0 for g in result["gpus"])
    else:
        assert "NVML" in result["error"]


class _FakeNvml:
    """pynvml's surface for one GPU whose driver may lack the v2 memory call."""

    NVMLError = pynvml.NVMLError
    NVML_ERROR_FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    nvmlMemory_v2 = pynvml.nvmlMemory_v2
    MIB = 2**20

    def __init__(self, v2_error: int | None, v1_error: int | None = None) -> None:
        self.v2_error, self.v1_error = v2_error, v1_error

    def nvmlDeviceGetMemoryInfo(self, handle: object, version: int | None = None) -> object:
        if version is None:  # v1: reserved counted as used
            if self.v1_error is not None:
                raise pynvml.NVMLError(self.v1_error)
            return SimpleNamespace(total=143771 * self.MIB, used=615 * self.MIB)
        if self.v2_error is not None:
            raise pynvml.NVMLError(self.v2_error)
        return SimpleNamespace(total=143771 * self.MIB, used=0, reserved=615 * self.MIB)


def test_nvml_reads_v2_and_reports_reserved_apart() -> None:
    assert gpumem.nvml_memory(_FakeNvml(None), object()) == (143771 * 2**20, 0, 615 * 2**20)


@pytest.mark.parametrize("error", [pynvml.NVML_ERROR_FUNCTION_NOT_FOUND,
                                   pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH])
def test_nvml_without_v2_falls_back_to_v1_and_says_so(error: int) -> None:
    total, used, reserved = gpumem.nvml_memory(_FakeNvml(error), object())
    assert (used, reserved) == (615 * 2**20, None)
    gpu = gpumem.GpuMemory(0, "x", None, total // 2**20, used // 2**20, reserved)
    assert gpumem.memory_api("pynvml", [gpu]) == "nvml-v1 (used includes reserved)"


def test_other_nvml_errors_are_not_swallowed() -> None:
    with pytest.raises(pynvml.NVMLError):
        gpumem.nvml_memory(_FakeNvml(pynvml.NVML_ERROR_GPU_IS_LOST), object())


def test_a_unified_memory_gpu_is_listed_with_its_memory_unknown() -> None:
    # DGX Spark's GB10: NVML answers NOT_SUPPORTED to both memory calls (nvidia-smi prints [N/A]); the GPU is read
    # as memory unknown, like nvidia-smi's [N/A], instead of failing the whole probe; other errors still raise.
    spark = _FakeNvml(pynvml.NVML_ERROR_NOT_SUPPORTED, v1_error=pynvml.NVML_ERROR_NOT_SUPPORTED)
    assert gpumem.nvml_memory(spark, object()) == (None, None, None)
    with pytest.raises(pynvml.NVMLError):
        gpumem.nvml_memory(_FakeNvml(pynvml.NVML_ERROR_NOT_SUPPORTED, v1_error=pynvml.NVML_ERROR_GPU_IS_LOST), object())
    gb10 = gpumem.GpuMemory(0, "NVIDIA GB10", None, None, None, None)
    h200 = gpumem.GpuMemory(1, "NVIDIA H200", None, 143771, 0, 615)
    assert gpumem.memory_api("pynvml", [gb10, h200]) == "nvml-v2" and gb10.as_dict()["usable_mib"] is None
