"""Editor checks: parsing MODEL=ROLE, the FIM fit test, and the verdict rows."""

from __future__ import annotations

import pytest

from coderig_deploy.bench import editor
from coderig_deploy.bench.editorcheck import editor_checks
from coderig_deploy.bench.tasks import load_tasks
from coderig_deploy.bench.verdict import Expectations, judge


def test_editor_model_parse() -> None:
    assert editor.EditorModel.parse("coderig/starcoder2-3b:16k=autocomplete") == \
        editor.EditorModel("coderig/starcoder2-3b:16k", "autocomplete")
    assert editor.EditorModel.parse("qwen2.5-coder:7b").role == "chat"
    with pytest.raises(ValueError, match="ROLE one of"):
        editor.EditorModel.parse("m:1=painting")


def test_fim_fits_only_a_middle_that_completes_the_function() -> None:
    task = load_tasks([editor.FIM_TASK])[0]
    suffix = editor.FIM_SUFFIX.format(entry=task.entry_point)
    body = "".join(task.reference.splitlines(keepends=True)[1:])
    ok, detail = editor.fits(task, body, suffix)
    assert ok and "fits" in detail
    ok, detail = editor.fits(task, "    return None\n", suffix)
    assert not ok and "does not fit" in detail
    ok, detail = editor.fits(task, "    return (\n", suffix)
    assert not ok and "not Python" in detail


def _row(kind: str, ok: bool = True, ttft: float | None = 0.05, detail: str = "fine") -> dict:
    return {"kind": kind, "model": "m:1", "role": "chat", "ok": ok, "detail": detail,
            "ttft_s": ttft, "total_s": 0.5}


def test_rows_become_named_checks_with_latency_against_the_expectation() -> None:
    rows = [_row("chat"), _row("fim", ttft=0.35), _row("fim", ok=False, ttft=None,
                                                       detail=editor.NO_FIM + " (Ollama: m does not support insert)"),
            _row("openai_models", ttft=None), _row("embeddings")]
    checks = {c.name: c for c in editor_checks(rows, chat_ttft_ms=1000, fim_ttft_ms=200)}
    assert list(checks) == ["editor_chat", "editor_fim", "editor_fim#2", "editor_openai_models", "editor_embeddings"]
    assert checks["editor_chat"].status == "pass" and checks["editor_chat"].measured == 50.0
    assert checks["editor_chat"].expected == "<= 1000 ms"
    assert checks["editor_fim"].status == "warn" and "slow for an editor" in checks["editor_fim"].reason
    assert checks["editor_fim#2"].status == "fail" and "no fill-in-the-middle support" in checks["editor_fim#2"].reason
    assert checks["editor_openai_models"].status == "pass" and checks["editor_openai_models"].measured == 500.0
    assert checks["editor_embeddings"].status == "skip"


def test_editor_only_result_is_judged_on_service_and_editor_checks() -> None:
    result = {"error": None, "ollama_version": "0.33.0", "config": {"editor_only": True},
              "editor": [_row("fim", ok=False, ttft=None, detail=editor.NO_FIM)]}
    verdict = judge(result, Expectations(fim_ttft_ms=200))
    assert [c["name"] for c in verdict["checks"]] == ["service", "editor_fim"]
    assert verdict["status"] == "fail" and verdict["reasons"] == [f"editor_fim: m:1 (chat): {editor.NO_FIM}"]
