"""A profile value or a host argument cannot reach the project unless it has a safe shape.

Each case in invalid.yaml patches a valid spec (dotted path -> value) and names a
fragment of the error it must raise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from coderig_deploy.project import ProjectSpec

HERE = Path(__file__).parent
INVALID = yaml.safe_load((HERE / "invalid.yaml").read_text())


def _base() -> dict[str, Any]:
    data = yaml.safe_load((HERE / "cases" / "dual_4090_sandbox" / "spec.yaml").read_text())
    data.pop("_what")
    return data


def _patch(data: dict[str, Any], path: str, value: Any) -> None:
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def test_the_base_spec_is_valid() -> None:
    ProjectSpec.model_validate(_base())


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_unsafe_values_are_refused(case: dict[str, Any]) -> None:
    data = _base()
    for path, value in case["set"].items():
        _patch(data, path, value)
    with pytest.raises(ValidationError) as info:
        ProjectSpec.model_validate(data)
    assert case["error"] in str(info.value)
