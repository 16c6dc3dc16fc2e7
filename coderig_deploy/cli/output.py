"""The one output layer: a rich table for people, JSON for programs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from coderig_deploy.safetext import safe


def _width() -> int | None:
    """None (rich's own choice: the terminal's width, or COLUMNS when set) on a terminal or where COLUMNS
    says; 160 for other piped output (CI logs, `| less`), which would otherwise be squeezed to 80."""
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit() else 160


console = Console(highlight=False, width=_width())
err_console = Console(stderr=True, highlight=False, width=_width())


def emit(data: Any, as_json: bool, render: Callable[[Console], None]) -> None:
    """Print `data` as one JSON document, or let `render` draw it for a person."""
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        render(console)


def plain(*parts: str | tuple[str, str]) -> Text:
    """Text from users or hosts, never read as rich markup (`[/x]`, `[a-z0-9]`) and never driving the terminal
    (safe); (text, style) pairs style a part.

    rich.markup.escape is not enough: it leaves a `\\[` that is not tag-shaped, and rich then eats the backslash.
    """
    return Text.assemble(*(safe(p) if isinstance(p, str) else (safe(p[0]), p[1]) for p in parts))


def text(value: str, style: str = "", **options: Any) -> Text:
    """rich's Text(value, style, ...) for text from users or hosts: no markup, and safe."""
    return Text(safe(value), style=style, **options)
