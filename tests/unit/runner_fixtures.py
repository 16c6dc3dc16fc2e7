"""Recorded ansible-runner events (trimmed) from real sandbox runs, for pure-function tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "runner_events"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def load(case: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]], dict[str, Any]]:
    """(events, per-host stats as runner.run returns them, expected) of one recorded run."""
    root = FIXTURES / case
    events = json.loads((root / "events.json").read_text())
    raw = json.loads((root / "stats.json").read_text())
    stats: dict[str, dict[str, int]] = {}
    for key, counts in raw.items():
        for host, count in counts.items():
            stats.setdefault(host, {})[key] = count
    return events, stats, json.loads((root / "expected.json").read_text())
