"""A host's CPU time and memory are read from its cgroup files (cgroup v2 cpu.stat)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coderig_deploy.sandbox import cgroups

CPU_STAT = "usage_usec 116138153\nuser_usec 98748905\nsystem_usec 17389247\nnice_usec 0\n"


@pytest.fixture
def host_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    unified, memory = tmp_path / "unified" / "coderig" / "lab-ws1", tmp_path / "memory" / "coderig" / "lab-ws1"
    unified.mkdir(parents=True)
    memory.mkdir(parents=True)
    monkeypatch.setattr(cgroups, "host_dirs", lambda name: [memory, unified] if name == "lab-ws1" else [])
    return unified


def test_cpu_seconds_come_from_usage_usec(host_dir: Path) -> None:
    (host_dir / "cpu.stat").write_text(CPU_STAT)
    assert cgroups.cpu_seconds("lab-ws1") == pytest.approx(116.138153)


def test_no_cpu_stat_means_not_measurable(host_dir: Path) -> None:
    assert cgroups.cpu_seconds("lab-ws1") is None
    assert cgroups.cpu_seconds("lab-other") is None


def test_memory_comes_from_the_first_hierarchy_that_has_it(host_dir: Path) -> None:
    (host_dir / "memory.current").write_text("18874368\n")
    assert cgroups.memory_bytes("lab-ws1") == 18874368
