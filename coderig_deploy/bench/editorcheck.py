"""The verdict on the editor measurements (editor.py): one named check per row."""

from __future__ import annotations

from typing import Any

from coderig_deploy.bench.checks import FAIL, PASS, SKIP, WARN, Check


def editor_checks(rows: list[dict[str, Any]], chat_ttft_ms: float | None,
                  fim_ttft_ms: float | None) -> list[Check]:
    """A check per row, named `editor_<kind>` (`#2`, `#3` for a second model of the same kind).

    A failed request fails; a first token later than the profile expects warns
    (the endpoint works, the editor feels slow); embeddings are not measured (skip).
    """
    seen: dict[str, int] = {}
    checks = []
    for row in rows:
        base = f"editor_{row['kind']}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        checks.append(_check(name, row, fim_ttft_ms if row["kind"] == "fim" else chat_ttft_ms))
    return checks


def _check(name: str, row: dict[str, Any], ttft_ms: float | None) -> Check:
    where = f"{row['model']} ({row['role']})"
    if row["kind"] == "embeddings":
        return Check(name, SKIP, f"{where}: {row['detail']}")
    if not row["ok"]:
        return Check(name, FAIL, f"{where}: {row['detail']}")
    ttft = row.get("ttft_s")
    latency = row.get("ttft_s") if ttft is not None else row.get("total_s")
    label = "first token" if ttft is not None else "answered"
    measured = None if latency is None else round(latency * 1000, 1)
    text = f"{where}: {row['detail']}" + ("" if measured is None else f"; {label} in {measured:.0f} ms")
    if ttft is None or ttft_ms is None:
        return Check(name, PASS, text, measured, None)
    expected = f"<= {ttft_ms:g} ms"
    if measured is not None and measured > ttft_ms:
        return Check(name, WARN, f"{text}, expected {expected}: slow for an editor", measured, expected)
    return Check(name, PASS, f"{text} ({expected})", measured, expected)
