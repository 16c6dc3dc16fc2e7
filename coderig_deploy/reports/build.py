"""Assemble reports from host results (a hostbench JSON and/or verify checks)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from coderig_deploy import __version__
from coderig_deploy.bench.checks import FAIL, Check, overall, worst
from coderig_deploy.bench.verdict import Expectations, judge
from coderig_deploy.reports.fleet import aggregate
from coderig_deploy.reports.model import CheckResult, HostReport, RunReport


def host_report(host: str, bench: dict[str, Any] | None, exp: Expectations,
                verify: list[Check] | None = None,
                leading: list[CheckResult] | None = None) -> HostReport:
    """One host's report: `leading` checks (e.g. apply's `provision`), the verdict of its
    benchmark result, then any verify checks."""
    checks: list[CheckResult] = list(leading or [])
    if bench is not None:
        checks += [CheckResult(**c) for c in judge(bench, exp)["checks"]]
    checks += [CheckResult(**c.as_dict(), source="verify") for c in verify or []]
    as_checks = [Check(c.name, c.status, c.reason) for c in checks]
    ps = (bench or {}).get("ps") or {}
    gpus = ((bench or {}).get("gpu_memory") or {}).get("gpus") or []
    decode = (((bench or {}).get("summary") or {}).get("decode_tok_s") or {}).get("median")
    return HostReport(
        host=host, verdict=overall(as_checks) if checks else "fail",  # type: ignore[arg-type]
        reasons=[f"{c.name}: {c.reason}" for c in checks if c.status in ("warn", "fail")]
        or ([] if checks else ["no result came back from the host"]),
        checks=checks, decode_tok_s=decode, expected_decode_tok_s=exp.decode_tok_s,
        processor=ps.get("processor"), context_length=ps.get("context_length"),
        expected_context=exp.num_ctx, gpu_used_mib=[g.get("used_mib") for g in gpus],
        gpu_planned_mib=[exp.planned_gpu_mib[i] for i in sorted(exp.planned_gpu_mib)],
        bench=bench)


def run_report(hosts: list[HostReport], profile: str | None = None,
               model: str | None = None, editor_config: str | None = None) -> RunReport:
    """The whole run; its verdict is the worst host's."""
    return RunReport(tool_version=__version__, profile=profile, model=model,
                     created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     verdict=worst(h.verdict for h in hosts) if hosts else FAIL,  # type: ignore[arg-type]
                     hosts=hosts,
                     aggregate=aggregate(hosts), editor_config=editor_config)


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def summary_row(h: HostReport) -> dict[str, str]:
    """The columns apply's final table and report.md show for a host."""
    vram = " / ".join(f"{_num(u, '{:.0f}')} ({p})" for u, p in
                      zip(h.gpu_used_mib + [None] * len(h.gpu_planned_mib), h.gpu_planned_mib))
    return {"host": h.host,
            "tok/s (expected)": f"{_num(h.decode_tok_s)} ({_num(h.expected_decode_tok_s)})",
            "VRAM MiB per GPU (planned)": vram or "-",
            "offload": h.processor or "-",
            "context": f"{h.context_length or '-'} ({h.expected_context or '-'})",
            "verdict": h.verdict}
