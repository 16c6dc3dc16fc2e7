"""Fill-in-the-middle (`/api/generate` with `suffix`), as Ollama does it.

Ollama gives a model the "insert" capability when its template uses `.Suffix`
(server/images.go, Model.Capabilities) and refuses a `suffix` for any other model
with 400 `<full model name> does not support insert` (ollama/ollama#12425 shows the
text). The middle is deterministic: the body of a function the simulator knows
when the prompt ends in its signature, else `pass`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .store import Model

if TYPE_CHECKING:
    from .names import ModelName

_SUFFIX_VAR = re.compile(r"{{-?\s*(if\s+)?\.Suffix\b")
_DEF = re.compile(r"def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def capabilities(model: Model) -> list[str]:
    """What /api/show lists: completion always (these are text models), insert from the template."""
    return ["completion", "insert"] if _SUFFIX_VAR.search(model.template or "") else ["completion"]


def full_name(name: "ModelName") -> str:
    """`registry.ollama.ai/library/model:tag`: how Ollama names a model in this error."""
    return f"{name.host}/{name.namespace}/{name.model}:{name.tag}"


def refusal(model: Model) -> str | None:
    """Ollama's error for a `suffix` this model cannot take, or None when it can."""
    return None if "insert" in capabilities(model) else f"{full_name(model.name)} does not support insert"


def middle(prompt: str, answers: dict[str, str], broken: bool) -> str:
    """The text between `prompt` and the suffix: the known function's body after its signature."""
    names = [n for n in _DEF.findall(prompt) if n in answers]
    if not names:
        return "pass\n"
    if broken:
        return "    return None\n"
    lines = answers[names[-1]].splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(f"def {names[-1]}(")), 0)
    return "".join(lines[start + 1:])


def wants_insert(body: dict[str, Any]) -> bool:
    return bool(str(body.get("suffix") or ""))
