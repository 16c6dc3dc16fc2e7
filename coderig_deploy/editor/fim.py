"""Which model families fill in the middle, from `data/model_fim.tsv` (each row names its source)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from coderig_deploy.resources import DATA_DIR


@dataclass(frozen=True)
class FimTokens:
    """The tokens a family's template writes around the prompt and the suffix."""

    prefix: str
    suffix: str
    middle: str


@cache
def _table() -> dict[str, FimTokens | None]:
    lines = [ln for ln in (DATA_DIR / "model_fim.tsv").read_text().splitlines() if ln and not ln.startswith("#")]
    table: dict[str, FimTokens | None] = {}
    for row in csv.DictReader(lines, delimiter="\t"):
        fim = row["fim"] == "1"
        table[row["ollama_name"]] = FimTokens(row["fim_prefix"], row["fim_suffix"], row["fim_middle"]) if fim else None
    return table


def fim_tokens(ollama_name: str) -> FimTokens | None:
    """The family's FIM tokens, or None when its Ollama template cannot fill in the middle."""
    return _table().get(ollama_name)


def supports_fim(ollama_name: str) -> bool:
    return fim_tokens(ollama_name) is not None


def known_families() -> list[str]:
    return sorted(_table())
