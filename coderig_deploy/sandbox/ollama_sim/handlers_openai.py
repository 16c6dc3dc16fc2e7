"""The OpenAI-compatible endpoints: `/v1/chat/completions` (SSE or not) and `/v1/models`.

Shaped as Ollama's openai middleware (openai/openai.go) shapes them: a chat request
becomes an `/api/chat` request (max_tokens -> num_predict, temperature, seed, stop),
chunks are `chat.completion.chunk` objects sent as `data: {...}` Server-Sent Events
ending with `data: [DONE]`, errors are `{"error": {"message", "type", ...}}`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator

from . import handlers_generate
from .handlers_models import _response, tags

if TYPE_CHECKING:
    from .server import App, Response

FINGERPRINT = "fp_ollama"


def _openai_error(status: int, message: str) -> Exception:
    from .server import ApiError
    kind = "invalid_request_error" if status == 400 else "api_error"
    return ApiError(status, message, body={"error": {"message": message, "type": kind, "param": None, "code": None}})


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for ours, theirs in (("num_predict", "max_tokens"), ("temperature", "temperature"), ("seed", "seed"),
                         ("top_p", "top_p"), ("stop", "stop")):
        if body.get(theirs) is not None:
            options[ours] = body[theirs]
    if body.get("max_completion_tokens") is not None:
        options["num_predict"] = body["max_completion_tokens"]
    return options


def _finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def chat_completions(app: "App", body: dict[str, Any]) -> "Response":
    from .server import ApiError
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise _openai_error(400, "[] is too short - 'messages'")
    stream = bool(body.get("stream"))
    request = {"model": body.get("model"), "messages": body["messages"], "stream": stream,
               "options": _options(body)}
    try:
        inner = handlers_generate.chat(app, request)
    except ApiError as exc:
        raise _openai_error(exc.status, str(exc)) from exc
    ident = f"chatcmpl-{int(time.time() * 1000) % 1000}"
    if stream:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return _response(stream=_chunks(inner.stream or iter(()), ident, include_usage), sse=True)
    final = inner.body or {}
    return _response({
        "id": ident, "object": "chat.completion", "created": int(time.time()), "model": final.get("model"),
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": final["message"]["content"]},
                     "finish_reason": _finish_reason(final.get("done_reason"))}],
        "usage": _usage(final)})


def _usage(final: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(final.get("prompt_eval_count", 0)), int(final.get("eval_count", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunks(lines: Iterator[dict[str, Any]], ident: str, include_usage: bool) -> Iterator[Any]:
    created = int(time.time())
    for line in lines:
        done = bool(line.get("done"))
        content = "" if done else (line.get("message") or {}).get("content", "")
        yield {"id": ident, "object": "chat.completion.chunk", "created": created, "model": line.get("model"),
               "system_fingerprint": FINGERPRINT,
               "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                            "finish_reason": _finish_reason(line.get("done_reason")) if done else None}]}
        if done and include_usage:
            yield {"id": ident, "object": "chat.completion.chunk", "created": created, "model": line.get("model"),
                   "system_fingerprint": FINGERPRINT, "choices": [], "usage": _usage(line)}
    yield "[DONE]"


def models(app: "App", body: dict[str, Any]) -> "Response":
    """`/v1/models`: every model of /api/tags, owned_by its namespace."""
    from .names import parse
    data = []
    for entry in (tags(app, body).body or {}).get("models", []):
        name = parse(entry["name"])
        data.append({"id": entry["name"], "object": "model", "created": _created(entry["modified_at"]),
                     "owned_by": name.namespace})
    return _response({"object": "list", "data": data})


def _created(iso: str) -> int:
    import datetime as dt
    return int(dt.datetime.fromisoformat(iso).timestamp())
