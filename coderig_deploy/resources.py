"""Where the shipped content lives: inside the wheel, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent

DATA_DIR = _PACKAGE / "data"


def shipped_dir(name: str) -> Path:
    """Return the directory of shipped content `name` (profiles, templates or playbooks).

    A wheel carries it as ``coderig_deploy/_shipped/<name>``; a source checkout
    (editable install, tests) has it at the repository root.
    """
    for candidate in (_PACKAGE / "_shipped" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"shipped directory {name!r} not found next to {_PACKAGE}")
