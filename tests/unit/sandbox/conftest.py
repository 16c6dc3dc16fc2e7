"""Shared fixtures: the simulated driver's scripts loaded as modules, a gpus.json."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox import gpu_sim


def load_script(name: str) -> ModuleType:
    """Import a host-side script (stdlib only) from coderig_deploy/sandbox/gpu/."""
    path = gpu_sim.GPU_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sim_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def smi() -> ModuleType:
    return load_script("nvidia_smi")


@pytest.fixture(scope="session")
def lspci() -> ModuleType:
    return load_script("lspci")


@pytest.fixture
def dual_4090() -> dict[str, Any]:
    """gpus.json of host ws1 in lab `test` with two RTX 4090 (UUIDs are stable)."""
    return gpu_sim.gpus_document(load_catalog().gpu("rtx-4090"), 2, "test/ws1")


@pytest.fixture
def write_doc(tmp_path: Path):  # type: ignore[no-untyped-def]
    import json

    def write(name: str, doc: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return path
    return write
