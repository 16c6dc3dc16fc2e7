"""Misbehaviour switches (docs/simulation-seam.md, ollama-faults.json).

Read on every request so a test flips a switch without restarting the server.
Every key is optional; an absent or empty file is a well-behaved server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .names import parse


@dataclass(frozen=True)
class Faults:
    slow_factor: float = 1.0          # generation takes this many times longer
    partial_offload: float | None = None  # share of the model placed on the GPUs (0..1)
    context_override: int | None = None   # the context the runner really gets
    missing_models: tuple[str, ...] = ()  # names the server behaves as if it lacks
    crash_on_load: bool | str = False     # true: 500 like a runner crash; "exit": the server dies
    broken_output: bool = False           # code answers are wrong
    extra: dict[str, Any] = field(default_factory=dict)

    def is_missing(self, name: str) -> bool:
        try:
            wanted = parse(name).display()
        except ValueError:
            return False
        return any(_display(missing) == wanted for missing in self.missing_models)


def _display(name: str) -> str:
    try:
        return parse(name).display()
    except ValueError:
        return name


def load(path: Path) -> Faults:
    """Read the switches at `path`; a missing or empty file means none."""
    try:
        text = path.read_text()
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        return Faults()
    if not text.strip():
        return Faults()
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: want a JSON object")
    known = {"slow_factor", "partial_offload", "context_override", "missing_models",
             "crash_on_load", "broken_output"}
    slow = float(data.get("slow_factor") or 1.0)
    partial = data.get("partial_offload")
    context = data.get("context_override")
    return Faults(
        slow_factor=max(slow, 0.0) or 1.0,
        partial_offload=None if partial is None else min(max(float(partial), 0.0), 1.0),
        context_override=None if not context else int(context),
        missing_models=tuple(str(m) for m in data.get("missing_models") or ()),
        crash_on_load=data.get("crash_on_load") or False,
        broken_output=bool(data.get("broken_output")),
        extra={k: v for k, v in data.items() if k not in known},
    )
