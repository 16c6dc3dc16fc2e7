"""`/api/generate` and `/api/chat`: preload, unload, and timed deterministic generation.

Decode runs at the fit model's tok/s for the simulated GPUs (slowed by the
slow_factor switch); the server really sleeps so wall time matches the reported
durations (CODERIG_SIM_TIME_SCALE shrinks the sleeps for tests). Metric fields are
omitted when zero, as Ollama does.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any, Iterator

from . import insert, textgen
from .handlers_models import _error, _response, find
from .names import parse_duration
from .scheduler import LoadFailed

if TYPE_CHECKING:
    from .server import App, Response

DEFAULT_TEMPERATURE = 0.8  # Ollama's default option


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _keep_alive(app: "App", body: dict[str, Any]) -> float:
    try:
        return parse_duration(body.get("keep_alive"), app.config.keep_alive)
    except ValueError as exc:
        raise _error(400, str(exc)) from exc


def _metrics(**values: int) -> dict[str, int]:
    return {k: v for k, v in values.items() if v}


def generate(app: "App", body: dict[str, Any]) -> "Response":
    prompt = str(body.get("prompt") or "")
    system = str(body.get("system") or "")
    if insert.wants_insert(body):
        return _insert(app, body, prompt)
    return _run(app, body, prompt, system + "\n" + prompt if system else prompt, chat=False)


def _insert(app: "App", body: dict[str, Any], prompt: str) -> "Response":
    """A `suffix` asks for the middle; refused (400) before loading, as Ollama checks capabilities first."""
    problem = insert.refusal(find(app, body.get("model") or body.get("name")))
    if problem:
        raise _error(400, problem)
    middle = insert.middle(prompt, app.code_answers(), app.faults().broken_output)
    return _run(app, body, prompt, prompt + str(body["suffix"]), chat=False, fixed=middle)


def chat(app: "App", body: dict[str, Any]) -> "Response":
    messages = body.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last_user = str(users[-1].get("content") or "") if users else ""
    transcript = "\n".join(str(m.get("content") or "") for m in messages if isinstance(m, dict))
    return _run(app, body, last_user if messages else "", transcript, chat=True)


def _run(app: "App", body: dict[str, Any], prompt: str, full_prompt: str, chat: bool,
         fixed: str | None = None) -> "Response":
    raw_name = body.get("model") or body.get("name")
    model = find(app, raw_name)
    keep_alive = _keep_alive(app, body)
    faults = app.faults()
    options = dict(body.get("options") or {})
    name = model.name.display()
    if not full_prompt.strip() and keep_alive == 0:
        app.scheduler.unload(name)
        return _response(_done(name, chat, "unload"))
    try:
        runner, load_seconds = app.scheduler.acquire(model, options, faults)
    except LoadFailed as exc:
        raise _error(500, str(exc)) from exc
    if not full_prompt.strip():
        app.scheduler.release(runner, keep_alive)
        return _response(_done(name, chat, "load"))
    options = {**model.params, **options}
    temperature = float(options.get("temperature", DEFAULT_TEMPERATURE))
    seed = options.get("seed")
    if fixed is not None:
        answer = textgen.fixed_answer(fixed, _num_predict(options))
    else:
        answer = textgen.answer(name, prompt, seed=None if seed is None else int(seed), temperature=temperature,
                                num_predict=_num_predict(options), answers=app.code_answers(),
                                broken=faults.broken_output)
    prompt_tokens = min(textgen.count_tokens(full_prompt), runner.ctx)  # truncated to num_ctx, silently
    speed = runner.placement.decode_tok_s / faults.slow_factor
    prefill = speed * float(app.constants["prefill_to_decode_ratio"]["value"])
    timing = _Timing(app.config.time_scale, load_seconds)
    lines = _tokens(name, chat, answer, prompt_tokens, speed, prefill, timing)

    def guarded() -> Iterator[dict[str, Any]]:
        try:
            yield from lines
        finally:
            app.scheduler.release(runner, keep_alive)

    if body.get("stream", True) is not False:
        return _response(stream=guarded())
    text, final = "", {}
    for final in guarded():
        text += (final.get("message") or {}).get("content", "") if chat else final.get("response", "")
    if chat:
        final["message"] = {"role": "assistant", "content": text}
    else:
        final["response"] = text
    return _response(final)


def _num_predict(options: dict[str, Any]) -> int | None:
    value = options.get("num_predict")
    return None if value is None or int(value) < 0 else int(value)


def _done(name: str, chat: bool, reason: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": name, "created_at": _now_iso(), "done": True, "done_reason": reason}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    return body


class _Timing:
    """Sleeps scaled by CODERIG_SIM_TIME_SCALE; reports simulated time plus the real
    (unscaled) overhead, so a small scale does not magnify Python's per-token cost."""

    def __init__(self, scale: float, load_seconds: float) -> None:
        self.scale = scale
        self.start = time.monotonic()
        self.load_ns = int(load_seconds * 1e9)

    def sleep_until(self, anchor: float, simulated_seconds: float) -> None:
        delay = anchor + simulated_seconds * self.scale - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def since(self, anchor: float, simulated_seconds: float) -> int:
        """Nanoseconds since `anchor`: the simulated time plus any wall time beyond its scaled sleep."""
        overhead = max(time.monotonic() - anchor - simulated_seconds * self.scale, 0.0)
        return int((simulated_seconds + overhead) * 1e9)


def _tokens(name: str, chat: bool, answer: textgen.Answer, prompt_tokens: int, speed: float,
            prefill: float, timing: _Timing) -> Iterator[dict[str, Any]]:
    prefill_start = time.monotonic()
    prefill_seconds = prompt_tokens / prefill
    timing.sleep_until(prefill_start, prefill_seconds)
    prompt_ns = timing.since(prefill_start, prefill_seconds)
    decode_start = time.monotonic()
    for i, token in enumerate(answer.tokens):
        timing.sleep_until(decode_start, (i + 1) / speed)
        chunk: dict[str, Any] = {"model": name, "created_at": _now_iso(), "done": False}
        if chat:
            chunk["message"] = {"role": "assistant", "content": token}
        else:
            chunk["response"] = token
        yield chunk
    eval_ns = timing.since(decode_start, len(answer.tokens) / speed)
    final = _done(name, chat, answer.done_reason)
    total_ns = timing.load_ns + int((prefill_start - timing.start) * 1e9) + prompt_ns + eval_ns
    final.update(_metrics(total_duration=total_ns, load_duration=timing.load_ns,
                          prompt_eval_count=prompt_tokens, prompt_eval_duration=prompt_ns,
                          eval_count=len(answer.tokens), eval_duration=eval_ns))
    yield final
