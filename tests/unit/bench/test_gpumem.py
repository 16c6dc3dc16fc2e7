"""nvidia-smi CSV parsing against fixtures of real output shapes, and the probe's fallbacks."""

import json
import os
import stat
from pathlib import Path

import pytest

from coderig_deploy.bench import gpumem
from coderig_deploy.errors import BenchError

FIXTURES = Path(__file__).parent / "nvidia_smi"
CASES = sorted(p.stem for p in FIXTURES.glob("*.txt"))


@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str) -> None:
    text = (FIXTURES / f"{case}.txt").read_text()
    expected = json.loads((FIXTURES / f"{case}.json").read_text())
    assert [g.as_dict() for g in gpumem.parse_query_gpu(text)] == expected


def test_gib_units_are_converted() -> None:
    (gpu,) = gpumem.parse_query_gpu("0, X, GPU-1, 24 GiB, 1.5 GiB\n")
    assert (gpu.total_mib, gpu.used_mib) == (24576, 1536)


def test_wrong_field_count_is_an_error() -> None:
    with pytest.raises(BenchError, match="expected 5 fields"):
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
                        'echo "0, NVIDIA GeForce RTX 4090, GPU-1, 24564, 1200"')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    result = gpumem.probe("nvidia-smi")
    assert result["error"] is None and result["source"] == "nvidia-smi"
    assert result["gpus"][0]["used_mib"] == 1200


def test_pynvml_without_a_driver_is_an_error_not_a_crash() -> None:
    # nvidia-ml-py is installed in the venv; this machine has no libnvidia-ml.so.1.
    result = gpumem.probe("pynvml")
    assert result["source"] == "pynvml"
    if result["gpus"]:  # a machine with a real GPU: the figures must be sane
        assert all(g["total_mib"] > 0 for g in result["gpus"])
    else:
        assert "NVML" in result["error"]
