"""The verdict of one host: its checks against the profile's expectations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coderig_deploy.bench.checks import FAIL, PASS, SKIP, WARN, Check, overall
from coderig_deploy.bench.editorcheck import editor_checks
from coderig_deploy.bench.vramcheck import context_check, gpu_memory_checks, offload_check

SKIPPED = "skipped: "
MEASURED_CHECKS = ("decode_speed", "generation_length", "gpu_offload", "context", "code_check")


@dataclass(frozen=True)
class Expectations:
    """What a host must show; built from a Profile and its Plan on the controller."""

    decode_tok_s: float | None = None
    tolerance_tok_s: float = 0.0
    gpu_percent: float = 100.0
    num_ctx: int | None = None
    planned_gpu_mib: dict[int, int] = field(default_factory=dict)
    vram_tolerance_pct: float = 10.0
    vram_tolerance_min_mib: int = 1024
    require_code_check: bool = True
    chat_ttft_ms: float | None = None
    fim_ttft_ms: float | None = None


def judge(result: dict[str, Any], exp: Expectations) -> dict[str, Any]:
    """Return {"status": pass|warn|fail, "reasons": [...], "checks": [...]} for a result."""
    checks = _checks(result, exp)
    status = overall(checks)
    # A code check skipped for want of isolation is not a pass: it is listed with the reasons.
    reasons = [f"{c.name}: {c.reason}" for c in checks
               if c.status in (FAIL, WARN) or c.reason.startswith(SKIPPED)]
    return {"status": status, "reasons": reasons, "checks": [c.as_dict() for c in checks]}


def _checks(result: dict[str, Any], exp: Expectations) -> list[Check]:
    error = result.get("error")
    if error:
        down = [Check("service", FAIL, error)]
        return down + [Check(n, SKIP, "not measured: the benchmark did not complete")
                       for n in MEASURED_CHECKS]
    checks = [Check("service", PASS, f"Ollama {result.get('ollama_version')} answered")]
    editor = editor_checks(result.get("editor") or [], exp.chat_ttft_ms, exp.fim_ttft_ms)
    if (result.get("config") or {}).get("editor_only"):
        return checks + editor
    checks += [speed_check(result, exp), length_check(result)]
    checks += [offload_check(result.get("ps"), exp.gpu_percent),
               context_check(result.get("ps"), exp.num_ctx)]
    checks += gpu_memory_checks(result.get("gpu_memory") or {}, exp.planned_gpu_mib,
                                exp.vram_tolerance_pct, exp.vram_tolerance_min_mib)
    checks.append(code_check(result.get("code_check"), exp.require_code_check))
    return checks + editor


def speed_check(result: dict[str, Any], exp: Expectations) -> Check:
    """Median decode tok/s at least expected minus tolerance (median: robust to one outlier)."""
    stats = result["summary"]["decode_tok_s"]
    median = stats.get("median")
    if median is None:
        return Check("decode_speed", FAIL, "no run reported eval_duration", None, exp.decode_tok_s)
    if exp.decode_tok_s is None:
        return Check("decode_speed", PASS, f"{median:.1f} tok/s (no expectation)", median, None)
    floor = exp.decode_tok_s - exp.tolerance_tok_s
    expected = f">= {floor:.1f}"
    text = (f"median {median:.1f} tok/s (mean {stats['mean']:.1f}, sd {stats['stdev']:.1f}, "
            f"n={stats['n']}); expected {exp.decode_tok_s:g} - {exp.tolerance_tok_s:g}")
    if median < floor:
        return Check("decode_speed", FAIL, "too slow: " + text, median, expected)
    return Check("decode_speed", PASS, text, median, expected)


def length_check(result: dict[str, Any]) -> Check:
    """Warn when a timed run stopped before generating the tokens asked for."""
    asked = result["config"]["num_predict"]
    short = [r["eval_count"] for r in result["runs"] if r["eval_count"] < asked]
    if short:
        return Check("generation_length", WARN, f"{len(short)} run(s) generated fewer tokens "
                     f"than the {asked} asked ({short}); speeds are less comparable", short, asked)
    return Check("generation_length", PASS, f"every run generated {asked} tokens", asked, asked)


def code_check(results: list[dict[str, Any]] | None, required: bool) -> Check:
    """Pass when every code task passed; a failed or code-less answer fails the host.

    Skipped (no isolation on the host) is its own status, shown with the reasons.
    """
    if not results:
        return Check("code_check", FAIL if required else SKIP, "no code check was run")
    bad = [f"{r['task']} {r['status']} ({r['detail']})" for r in results
           if r["status"] not in ("passed", "skipped")]
    summary = f"{sum(r['status'] == 'passed' for r in results)}/{len(results)} passed"
    if bad:
        return Check("code_check", FAIL, f"{summary}: " + "; ".join(bad), summary, "all")
    skipped = [r for r in results if r["status"] == "skipped"]
    if skipped:  # no isolation on this host: the answers were never run
        return Check("code_check", SKIP, SKIPPED + skipped[0]["detail"], "skipped", "all")
    isolation = results[0]["isolation"]
    return Check("code_check", PASS, f"{summary} (isolation: {isolation})", summary, "all")
