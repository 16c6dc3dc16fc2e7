"""Editor checks: the endpoints coding tools use, measured on the host (stdlib only).

Chat tools (Continue, Cline, Zed, Aider through LiteLLM) stream `/api/chat` with a
system prompt; many tools speak the OpenAI-compatible `/v1/chat/completions` (SSE)
and list `/v1/models`; autocomplete sends fill-in-the-middle: `/api/generate` with
`prompt` + `suffix`, raw, which Ollama refuses for a model whose template has no
`.Suffix` ("... does not support insert"). Each measurement is a plain dict; the
verdict (editorcheck.py) judges it against the profile's expectations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coderig_deploy.bench import codecheck
from coderig_deploy.bench.ollama_api import OllamaClient, canonical_name, parse_ps
from coderig_deploy.bench.tasks import load_tasks
from coderig_deploy.errors import BenchError

ROLES = ("chat", "autocomplete", "embeddings")
SYSTEM_PROMPT = "You are a concise coding assistant. Answer in one short sentence."
USER_PROMPT = "What does Python's enumerate() return?"
FIM_TASK = "is_palindrome"
# What follows the function in the file: the middle must end the function cleanly before it.
FIM_SUFFIX = "\n\nif __name__ == \"__main__\":\n    print({entry}(\"abba\"))\n"
NO_FIM = "no fill-in-the-middle support"


@dataclass(frozen=True)
class EditorModel:
    """A model the editor uses, and for what."""

    model: str
    role: str

    @classmethod
    def parse(cls, text: str) -> "EditorModel":
        """`coderig/starcoder2-3b:16k=autocomplete` (the role defaults to chat)."""
        model, _, role = text.rpartition("=") if "=" in text else (text, "", "chat")
        if role not in ROLES or not model:
            raise ValueError(f"{text!r}: expected MODEL=ROLE with ROLE one of {', '.join(ROLES)}")
        return cls(model, role)


def _row(kind: str, em: EditorModel, ok: bool, detail: str, ttft: float | None = None,
         total: float | None = None) -> dict[str, Any]:
    return {"kind": kind, "model": em.model, "role": em.role, "ok": ok, "detail": detail,
            "ttft_s": None if ttft is None else round(ttft, 4),
            "total_s": None if total is None else round(total, 4)}


def measure(client: OllamaClient, models: list[EditorModel], num_predict: int = 64) -> list[dict[str, Any]]:
    """Every editor check of every model, then the one that all stay loaded together."""
    rows: list[dict[str, Any]] = []
    everyone = EditorModel(f"{len(models)} model(s)", "all roles")
    for em in models:
        if em.role != "embeddings":
            _guard("load", em, lambda: _preload(client, em))  # TTFT is measured warm, as an editor sees it
        if em.role == "chat":
            rows += [_guard("chat", em, lambda: chat_stream(client, em, num_predict)),
                     _guard("openai_chat", em, lambda: openai_chat(client, em, num_predict))]
        elif em.role == "autocomplete":
            rows.append(_guard("fim", em, lambda: fim(client, em)))
        else:
            rows.append(_row("embeddings", em, True, "not checked: embeddings are not measured"))
    if any(em.role != "embeddings" for em in models):
        rows.append(_guard("openai_models", everyone, lambda: openai_models(client, models)))
    if len(models) > 1:
        rows.append(_guard("resident", everyone, lambda: resident(client, models)))
    return rows


def _preload(client: OllamaClient, em: EditorModel) -> dict[str, Any]:
    client.post("/api/generate", {"model": em.model})
    return {}


def _guard(kind: str, em: EditorModel, work: Any) -> dict[str, Any]:
    try:
        return work()  # type: ignore[no-any-return]
    except BenchError as exc:
        return _row(kind, em, False, str(exc))


def chat_stream(client: OllamaClient, em: EditorModel, num_predict: int) -> dict[str, Any]:
    """/api/chat, streamed, with a system prompt: what Continue, Cline and Zed send."""
    body = {"model": em.model, "stream": True, "options": {"temperature": 0, "num_predict": num_predict},
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}]}
    started = client.clock()
    ttft, text, done = None, "", False
    for arrived, line in client.stream("/api/chat", body):
        if not line.strip():
            continue
        chunk = json.loads(line)
        if "error" in chunk:
            raise BenchError(f"/api/chat stream ended with an error: {chunk['error']}")
        piece = (chunk.get("message") or {}).get("content") or ""
        if piece and ttft is None:
            ttft = arrived - started
        text += piece
        done = done or bool(chunk.get("done"))
    total = client.clock() - started
    ok = done and bool(text.strip())
    detail = f"/api/chat streamed {len(text)} chars" if ok else "/api/chat gave no answer (empty or unfinished)"
    return _row("chat", em, ok, detail, ttft, total)


def openai_chat(client: OllamaClient, em: EditorModel, num_predict: int) -> dict[str, Any]:
    """/v1/chat/completions as Server-Sent Events, ending with `data: [DONE]`."""
    body = {"model": em.model, "stream": True, "temperature": 0, "max_tokens": num_predict,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": USER_PROMPT}]}
    started = client.clock()
    ttft, text, finished, closed = None, "", None, False
    for arrived, line in client.stream("/v1/chat/completions", body):
        data = line.decode(errors="replace").strip()
        if not data.startswith("data:"):
            continue
        data = data[len("data:"):].strip()
        if data == "[DONE]":
            closed = True
            break
        chunk = json.loads(data)
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content") or ""
            if piece and ttft is None:
                ttft = arrived - started
            text += piece
            finished = choice.get("finish_reason") or finished
    total = client.clock() - started
    ok = closed and finished is not None and bool(text.strip())
    detail = (f"/v1/chat/completions streamed {len(text)} chars (finish_reason {finished})" if ok else
              f"/v1/chat/completions: {'no [DONE]' if not closed else 'no finish_reason' if not finished else 'empty'}")
    return _row("openai_chat", em, ok, detail, ttft, total)


def openai_models(client: OllamaClient, models: list[EditorModel]) -> dict[str, Any]:
    """/v1/models lists every model the editor is configured with."""
    started = client.clock()
    listed = {canonical_name(str(m.get("id", ""))) for m in client.get("/v1/models").get("data") or []}
    total = client.clock() - started
    missing = [em.model for em in models if canonical_name(em.model) not in listed]
    detail = f"/v1/models lacks {', '.join(missing)}" if missing else "/v1/models lists every one"
    return _row("openai_models", EditorModel(f"{len(models)} model(s)", "all roles"), not missing, detail, None, total)


def fim(client: OllamaClient, em: EditorModel) -> dict[str, Any]:
    """Fill in the middle of a function; the middle fits when prefix+middle+suffix passes the task's tests."""
    task = load_tasks([FIM_TASK])[0]
    suffix = FIM_SUFFIX.format(entry=task.entry_point)
    body = {"model": em.model, "prompt": task.prompt, "suffix": suffix, "raw": True, "stream": True,
            "options": {"temperature": 0, "num_predict": 128}}
    started = client.clock()
    ttft, middle = None, ""
    try:
        for arrived, line in client.stream("/api/generate", body):
            if not line.strip():
                continue
            chunk = json.loads(line)
            if "error" in chunk:
                raise BenchError(str(chunk["error"]))
            piece = chunk.get("response") or ""
            if piece and ttft is None:
                ttft = arrived - started
            middle += piece
    except BenchError as exc:
        if "does not support insert" in str(exc):
            return _row("fim", em, False, f"{NO_FIM} (Ollama: {str(exc).split(': ', 2)[-1]})")
        raise
    total = client.clock() - started
    ok, detail = fits(task, middle, suffix)
    return _row("fim", em, ok, detail, ttft, total)


def fits(task: Any, middle: str, suffix: str) -> tuple[bool, str]:
    """Does `middle` complete the task's function between its prompt and `suffix`?"""
    code = task.prompt + middle + suffix
    try:
        compile(code, "<fim>", "exec")
    except SyntaxError as exc:
        return False, f"the middle does not fit: prefix+middle+suffix is not Python ({exc.msg}, line {exc.lineno})"
    check = codecheck.run_check(task.id, code, task.tests)
    if check.status == "passed":
        return True, f"the middle fits: {task.id} passes its tests ({len(middle)} chars)"
    if check.status == "skipped":
        return True, f"the middle fits: prefix+middle+suffix compiles (tests not run: {check.detail})"
    return False, f"the middle does not fit: {task.id} {check.status} ({check.detail})"


def resident(client: OllamaClient, models: list[EditorModel]) -> dict[str, Any]:
    """After use, every model is still loaded (/api/ps): none evicted the other."""
    loaded = {canonical_name(m.name) for m in parse_ps(client.get("/api/ps"))}
    missing = [em.model for em in models if em.role != "embeddings" and canonical_name(em.model) not in loaded]
    detail = (f"not resident together: {', '.join(missing)} unloaded (OLLAMA_MAX_LOADED_MODELS, or VRAM)" if missing
              else "all loaded together (/api/ps)")
    return _row("resident", EditorModel(f"{len(models)} model(s)", "all roles"), not missing, detail)
