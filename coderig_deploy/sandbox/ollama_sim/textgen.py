"""Deterministic text for generate/chat.

Temperature 0 (or a fixed seed) gives the same text for the same model and prompt,
as a real model does. A prompt that asks for a Python function by name (``def
name(``) gets a fenced code block implementing it when the function is one the
simulator knows (code_answers.json, plus any tasks shipped next to it); with the
``broken_output`` switch the body is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")
_WORDS = (
    "the function returns a list of values from the input and keeps the order while "
    "each item is checked once so the loop runs in linear time we use a dictionary to "
    "count and a set to skip duplicates this version handles empty input and raises "
    "an error for invalid arguments tests cover the edge cases of the code path"
).split()
_DEF = re.compile(r"def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def count_tokens(text: str) -> int:
    """A stand-in for the model's tokenizer: words and punctuation marks."""
    return len(_PIECE.findall(text))


def pieces(text: str) -> list[str]:
    """Split `text` into tokens whose concatenation is the text (bar trailing space)."""
    return _PIECE.findall(text)


@dataclass(frozen=True)
class Answer:
    tokens: list[str]
    done_reason: str


def _rng(model: str, prompt: str, seed: int | None, temperature: float) -> random.Random:
    if temperature > 0 and seed is None:
        return random.Random(os.urandom(16))
    material = f"{model}\0{prompt}\0{seed if temperature > 0 else ''}"
    return random.Random(hashlib.sha256(material.encode()).digest())


def _prose(rng: random.Random, count: int) -> list[str]:
    out: list[str] = []
    sentence = 0
    while len(out) < count:
        word = rng.choice(_WORDS)
        out.append((word.capitalize() if sentence == 0 else word) if not out else
                   (" " + word.capitalize() if sentence == 0 else " " + word))
        sentence += 1
        if sentence > 6 and rng.random() < 0.2 and len(out) < count:
            out.append(".")
            sentence = 0
    return out[:count]


def _answers_dir() -> Path:
    return Path(__file__).resolve().parent


def load_code_answers() -> dict[str, str]:
    """Function name -> correct implementation: code_answers.json, then the project's
    own code-check tasks (bench_answers.json in a release; bench/tasks in a checkout)."""
    here = _answers_dir()
    table: dict[str, str] = json.loads((here / "code_answers.json").read_text())["answers"]
    shipped = here / "bench_answers.json"
    if shipped.is_file():
        table.update(json.loads(shipped.read_text()).get("answers", {}))
    table.update(bench_task_answers(here.parent.parent / "bench" / "tasks"))
    return table


def bench_task_answers(tasks_dir: Path) -> dict[str, str]:
    """entry_point -> reference solution of every task file in `tasks_dir`."""
    answers: dict[str, str] = {}
    for path in sorted(tasks_dir.glob("*.json")) if tasks_dir.is_dir() else []:
        task = json.loads(path.read_text())
        if task.get("entry_point") and task.get("reference"):
            answers[task["entry_point"]] = task["reference"]
    return answers


def _signature_line(code: str, name: str) -> str:
    for line in code.splitlines():
        if line.lstrip().startswith(f"def {name}("):
            return line
    return f"def {name}(*args, **kwargs):"


def code_answer(prompt: str, answers: dict[str, str], broken: bool) -> str | None:
    """The reply to a "write this function" prompt, or None when it is not one."""
    names = [n for n in _DEF.findall(prompt) if n in answers]
    if not names:
        return None
    name = names[-1]
    code = answers[name].rstrip() + "\n"
    if broken:
        # Plausible shape, wrong result: the signature with a body that returns nothing useful.
        code = _signature_line(code, name) + "\n    return None\n"
    return f"Here is an implementation of `{name}`:\n\n```python\n{code}```\n"


def answer(model: str, prompt: str, *, seed: int | None, temperature: float,
           num_predict: int | None, answers: dict[str, str], broken: bool) -> Answer:
    """The tokens a model would generate for `prompt` and why it stopped."""
    rng = _rng(model, prompt, seed, temperature)
    code = code_answer(prompt, answers, broken)
    if code is not None:
        tokens = pieces(code)
        reason = "stop"
    elif num_predict is not None and num_predict > 0:
        tokens, reason = _prose(rng, num_predict), "length"
    else:
        tokens, reason = _prose(rng, 24 + rng.randrange(40)) + ["."], "stop"
    if num_predict is not None and 0 < num_predict < len(tokens):
        tokens, reason = tokens[:num_predict], "length"
    return Answer(tokens, reason)


def fixed_answer(text: str, num_predict: int | None) -> Answer:
    """`text` as tokens (a fill-in-the-middle reply), cut at num_predict."""
    tokens = pieces(text)
    if num_predict is not None and 0 < num_predict < len(tokens):
        return Answer(tokens[:num_predict], "length")
    return Answer(tokens, "stop")
