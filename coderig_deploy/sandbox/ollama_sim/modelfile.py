"""A Modelfile reader for `ollama create -f`: FROM, PARAMETER, TEMPLATE, SYSTEM, LICENSE
(triple-quoted values may span lines), turned into an /api/create request."""

from __future__ import annotations

import re
from typing import Any

_LINE = re.compile(r"^\s*([A-Za-z]+)\s+(.*)$")


class ModelfileError(ValueError):
    """A Modelfile the real CLI would reject."""


def _value(first: str, lines: list[str], index: int) -> tuple[str, int]:
    text = first.strip()
    if not text.startswith('"""'):
        return text.strip('"'), index
    body = text[3:]
    while '"""' not in body:
        if index >= len(lines):
            raise ModelfileError('unterminated """ block')
        body += "\n" + lines[index]
        index += 1
    return body[: body.index('"""')], index


def parse(text: str) -> dict[str, Any]:
    """Return {"from": ..., "parameters": {...}, "template"/"system"/"license": ...}."""
    lines = text.splitlines()
    out: dict[str, Any] = {}
    params: dict[str, Any] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ModelfileError(f"line {index}: command must be one of from, parameter, template, system, license")
        command, rest = match.group(1).lower(), match.group(2)
        if command == "parameter":
            key, _, raw = rest.strip().partition(" ")
            value, index = _value(raw, lines, index)
            if key == "stop":
                params.setdefault("stop", []).append(value)
            else:
                params[key] = value
        elif command in ("from", "template", "system", "license", "adapter", "message"):
            value, index = _value(rest, lines, index)
            out[command] = value
        else:
            raise ModelfileError(f"line {index}: unknown command {command!r}")
    if "from" not in out:
        raise ModelfileError("no FROM line for the model was specified")
    if params:
        out["parameters"] = params
    return out
