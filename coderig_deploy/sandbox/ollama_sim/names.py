"""Model names as Ollama parses them: ``[host/][namespace/]model[:tag]``.

Defaults (ollama.md, Model store): host ``registry.ollama.ai``, namespace
``library``, tag ``latest``. The manifest of a name lives at
``manifests/<host>/<namespace>/<model>/<tag>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]{1,5})?$")


class NameError_(ValueError):
    """A model name Ollama would reject."""


@dataclass(frozen=True)
class ModelName:
    host: str
    namespace: str
    model: str
    tag: str

    def manifest_parts(self) -> tuple[str, str, str, str]:
        return (self.host, self.namespace, self.model, self.tag)

    def display(self) -> str:
        """The shortest form Ollama shows (`model:tag` for the default registry)."""
        if self.host == DEFAULT_HOST:
            if self.namespace == DEFAULT_NAMESPACE:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    def repository(self) -> str:
        """The OCI repository path: ``namespace/model``."""
        return f"{self.namespace}/{self.model}"


def parse(name: str) -> ModelName:
    """Parse `name`, filling Ollama's defaults; raise NameError_ when it is invalid."""
    text = name.strip()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    if not text:
        raise NameError_("invalid model name: empty")
    tag = DEFAULT_TAG
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
    parts = text.split("/")
    if len(parts) > 3:
        raise NameError_(f"invalid model name {name!r}")
    host, namespace = DEFAULT_HOST, DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace, model = parts
    elif len(parts) == 2:
        namespace, model = parts
    else:
        model = parts[0]
    if not _HOST.match(host) or not all(_PART.match(p) for p in (namespace, model, tag)):
        raise NameError_(f"invalid model name {name!r}")
    return ModelName(host, namespace, model.lower(), tag)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object, default: float) -> float:
    """Seconds for a keep-alive value: a Go duration ("5m", "1h30m"), a number of
    seconds, or a negative value (forever, returned as -1). Ollama's envconfig and
    api.Duration accept these forms."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return -1.0 if value < 0 else float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return -1.0 if number < 0 else number
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    matches = list(_DURATION.finditer(body))
    if not matches or "".join(m.group(0) for m in matches) != body:
        raise ValueError(f"invalid duration {value!r}")
    seconds = sum(float(m.group(1)) * _UNIT_SECONDS[m.group(2)] for m in matches)
    return -1.0 if sign < 0 else seconds
