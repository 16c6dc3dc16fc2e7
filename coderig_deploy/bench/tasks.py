"""The code-check tasks shipped as data (tasks/*.json), readable from a zipapp too.

Each task: ``id``, ``entry_point`` (the function asked for), ``prompt`` (its
signature and docstring), ``tests`` (calls and what each must give:
``{"call": "f(1)", "expect": "<python literal>"}`` or ``{"call": ..., "raises":
"ValueError"}``; the controller compares, see codecheck.py) and ``reference`` (a
correct solution: unit tests prove every task passes with it, and the sandbox's
Ollama simulator answers with it when healthy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from coderig_deploy.errors import BenchError

INSTRUCTION = ("Complete the following Python function. Reply with the whole function, "
               "including any imports it needs, in one ```python fenced code block.\n\n")


@dataclass(frozen=True)
class CodeTask:
    """One docstring-to-function task."""

    id: str
    entry_point: str
    prompt: str
    tests: list[dict[str, str]]
    reference: str

    def request_prompt(self) -> str:
        """The prompt sent to the model."""
        return f"{INSTRUCTION}```python\n{self.prompt}```\n"


def load_tasks(names: list[str] | None = None) -> list[CodeTask]:
    """All shipped tasks sorted by id, or those named (BenchError for an unknown name)."""
    root = resources.files(__package__).joinpath("tasks")
    tasks = {}
    for entry in root.iterdir():
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            tasks[data["id"]] = CodeTask(**data)
    if names is None:
        return [tasks[key] for key in sorted(tasks)]
    unknown = sorted(set(names) - set(tasks))
    if unknown:
        raise BenchError(f"unknown code-check task(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(tasks))}")
    return [tasks[name] for name in names]


def simulator_answers() -> dict[str, object]:
    """The reference solutions keyed by function name, in the Ollama simulator's
    `bench_answers.json` format, so a healthy simulated model passes every task."""
    return {"answers": {t.entry_point: t.reference for t in load_tasks()},
            "source": "coderig_deploy/bench/tasks/*.json (reference solutions)"}


if __name__ == "__main__":
    import sys

    json.dump(simulator_answers(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
