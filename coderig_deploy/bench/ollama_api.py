"""Talking to Ollama's REST API (stdlib HTTP) and pure parsers of its replies.

Facts relied on (shared/reference/ollama.md): durations are nanoseconds; metric
fields are omitted when zero, so a missing field reads as 0; `/api/ps` may omit
`size_vram` when it is 0 and older servers lack `context_length`; a stream may end
with `{"error": ...}` instead of a final object.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from coderig_deploy.errors import BenchError

DEFAULT_URL = "http://127.0.0.1:11434"
_METRICS = ("total_duration", "load_duration", "prompt_eval_count",
            "prompt_eval_duration", "eval_count", "eval_duration")


@dataclass(frozen=True)
class Generation:
    """The metrics of one finished /api/generate request."""

    response: str
    done_reason: str | None
    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0
    ttft_s: float | None = None

    @property
    def decode_tok_s(self) -> float | None:
        """Decode speed exactly as `ollama run --verbose` prints it."""
        return _rate(self.eval_count, self.eval_duration)

    @property
    def prefill_tok_s(self) -> float | None:
        """Prompt processing speed."""
        return _rate(self.prompt_eval_count, self.prompt_eval_duration)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("response")
        data["decode_tok_s"] = self.decode_tok_s
        data["prefill_tok_s"] = self.prefill_tok_s
        return data


@dataclass(frozen=True)
class LoadedModel:
    """One entry of /api/ps."""

    name: str
    model: str
    size: int
    size_vram: int
    context_length: int | None

    @property
    def gpu_percent(self) -> float:
        """Share of the model in VRAM, 0-100 (100 = `ollama ps` says "100% GPU")."""
        return 100.0 if self.size <= 0 else 100.0 * self.size_vram / self.size

    @property
    def processor(self) -> str:
        """The PROCESSOR column exactly as `ollama ps` prints it."""
        if self.size_vram == self.size:
            return "100% GPU"
        if self.size_vram == 0:
            return "100% CPU"
        cpu = round((self.size - self.size_vram) / self.size * 100)
        return f"{cpu}%/{100 - cpu}% CPU/GPU"


def _rate(count: int, duration_ns: int) -> float | None:
    return count / duration_ns * 1e9 if duration_ns > 0 else None


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    return int(value) if isinstance(value, (int, float)) else 0


def parse_generation(obj: dict[str, Any], response: str | None = None,
                     ttft_s: float | None = None) -> Generation:
    """Parse the final object of /api/generate (or /api/chat); omitted metrics are 0."""
    if "error" in obj:
        raise BenchError(f"Ollama answered with an error: {obj['error']}")
    if response is None:
        message = obj.get("message")
        response = obj.get("response") or (message or {}).get("content") or ""
    return Generation(response=response, done_reason=obj.get("done_reason"), ttft_s=ttft_s,
                      **{key: _int(obj, key) for key in _METRICS})


def parse_stream(events: Iterable[tuple[float, bytes]], started: float) -> Generation:
    """Fold a streamed /api/generate reply into one Generation.

    `events` are (arrival time, JSON line) pairs; time to first token is the
    arrival of the first chunk carrying text, measured from `started`.
    """
    parts: list[str] = []
    ttft: float | None = None
    for arrived, line in events:
        if not line.strip():
            continue
        chunk = json.loads(line)
        if "error" in chunk:
            raise BenchError(f"Ollama stream ended with an error: {chunk['error']}")
        text = chunk.get("response") or (chunk.get("message") or {}).get("content") or ""
        if text and ttft is None:
            ttft = arrived - started
        parts.append(text)
        if chunk.get("done"):
            return parse_generation(chunk, "".join(parts), ttft)
    raise BenchError("Ollama stream ended without a final object (done=true)")


def parse_ps(obj: dict[str, Any]) -> list[LoadedModel]:
    """Parse /api/ps; `size_vram` omitted = 0, `context_length` omitted = unknown."""
    models = []
    for entry in obj.get("models") or []:
        ctx = entry.get("context_length")
        models.append(LoadedModel(
            name=str(entry.get("name", "")), model=str(entry.get("model", "")),
            size=_int(entry, "size"), size_vram=_int(entry, "size_vram"),
            context_length=int(ctx) if isinstance(ctx, (int, float)) and ctx else None))
    return models


def canonical_name(name: str) -> str:
    """`qwen2.5-coder` -> `qwen2.5-coder:latest`; strips the default registry/namespace."""
    for prefix in ("registry.ollama.ai/library/", "library/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def find_loaded(models: list[LoadedModel], wanted: str) -> LoadedModel | None:
    """The /api/ps entry for model `wanted`, matching on name or model."""
    key = canonical_name(wanted)
    for loaded in models:
        if key in (canonical_name(loaded.name), canonical_name(loaded.model)):
            return loaded
    return None


class OllamaClient:
    """A minimal blocking client: JSON in, JSON (or a line stream) out."""

    def __init__(self, base_url: str = DEFAULT_URL, timeout_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.clock = clock
        # Never through an HTTP proxy from the environment: Ollama is on this host or LAN.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str) -> dict[str, Any]:
        with self._open(path, None) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._open(path, body) as resp:
            return json.loads(resp.read())

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[tuple[float, bytes]]:
        """Yield (arrival time, line) for each line of a streamed reply."""
        with self._open(path, body) as resp:
            try:
                for line in resp:
                    yield self.clock(), line
            except OSError as exc:
                raise BenchError(f"{self.base_url}{path}: stream broke off: {exc}") from None

    def _open(self, path: str, body: dict[str, Any] | None) -> Any:
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        try:
            return self._opener.open(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            raise BenchError(f"{url}: HTTP {exc.code}: {http_error_detail(exc.read(), exc.reason)}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BenchError(f"cannot reach Ollama at {self.base_url}: {reason}; "
                             "is the ollama service running?") from None


def http_error_detail(body: bytes, reason: object, limit: int = 300) -> str:
    """One line for a report from an error reply: Ollama's own {"error": ...} message, else the status's
    reason and what came instead (a proxy's or another server's HTML page is not repeated into the report)."""
    text = body.decode(errors="replace").strip()
    try:
        message = json.loads(text).get("error")
    except (ValueError, AttributeError):
        message = None
    if isinstance(message, str) and message.strip():
        line = " ".join(message.split())
        return line if len(line) <= limit else line[:limit - 1] + "…"
    return f"{reason or 'error'} (not an Ollama reply: {len(body)} bytes{', HTML' if '<html' in text.lower() else ''})"
