"""benchmarks/fleet_scale.py's arithmetic: task time per host from runner events, the ratios
and the targets (the benchmark itself boots labs and runs as root; this checks its sums)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "fleet_scale.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fleet_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(n: int, kind: str, host: str, task: str, start: str, end: str) -> dict[str, Any]:
    return {"counter": n, "event": kind, "event_data": {
        "host": host, "task": task, "start": f"2026-12-01T00:00:{start}", "end": f"2026-12-01T00:00:{end}"}}


def test_task_times_split_the_benchmark_from_the_rest(tmp_path: Path) -> None:
    fleet = load()
    events = tmp_path / "artifacts" / "apply" / "job_events"
    events.mkdir(parents=True)
    rows = [event(1, "runner_on_ok", "ws1", "Gathering Facts", "00.000000", "02.000000"),
            event(2, "runner_on_ok", "ws2", "Gathering Facts", "00.000000", "04.000000"),
            event(3, "runner_on_start", "ws1", "Install", "02.000000", "09.000000"),  # a start: not counted
            event(4, "runner_on_ok", "ws1", fleet.BENCH_TASK, "10.000000", "40.000000"),
            event(5, "runner_on_failed", "ws2", fleet.BENCH_TASK, "10.000000", "20.000000")]
    for row in rows:
        (events / f"{row['counter']}-x.json").write_text(json.dumps(row))
    assert fleet.task_times(tmp_path) == (3.0, 20.0)


def run(wall: float) -> dict[str, Any]:
    return {"wall_s": wall}


def test_ratios_and_targets() -> None:
    fleet = load()
    rows = [{"hosts": 1, "first": run(100.0), "rerun": run(70.0)},
            {"hosts": 20, "first": run(610.0), "rerun": run(300.0)}]
    fleet.add_ratios(rows)
    assert rows[0]["first"]["x_1host"] == 1.0 and rows[0]["rerun"]["x_first"] == 0.7
    assert rows[1]["first"]["x_1host"] == 6.1 and not rows[1]["first_ok"]
    assert rows[1]["rerun"]["x_first"] == 0.49 and rows[1]["rerun_ok"]
