"""`report --compare RUN_A RUN_B`: what drifted per host between two runs (pure)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from coderig_deploy.reports.fleet import outcome
from coderig_deploy.reports.model import HostReport, RunReport


class Change(BaseModel):
    field: str = Field(description="tok/s, vram_gpu<N>_mib, ollama, driver, models, profile, verdict")
    a: str
    b: str
    delta: str = Field(default="", description="B - A for numbers (and in % for tok/s)")


class HostDrift(BaseModel):
    host: str
    changes: list[Change] = Field(description="Only the fields that differ")


class Comparison(BaseModel):
    a: str
    b: str
    hosts: list[HostDrift] = Field(description="Hosts in both runs, in B's order")
    only_in_a: list[str]
    only_in_b: list[str]


def _text(value: object) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _delta(a: float | int | None, b: float | int | None, percent: bool = False) -> str:
    if a is None or b is None:
        return ""
    diff = b - a
    text = f"{diff:+.1f}" if isinstance(diff, float) else f"{diff:+d}"
    return f"{text} ({diff / a * 100:+.0f}%)" if percent and a else text


def host_drift(a: HostReport, b: HostReport) -> HostDrift:
    """Every compared field of one host whose value differs between the runs."""
    fields: list[tuple[str, object, object, str]] = [
        ("verdict", outcome(a), outcome(b), ""),
        ("profile", a.profile, b.profile, ""),
        ("tok/s", a.decode_tok_s, b.decode_tok_s, _delta(a.decode_tok_s, b.decode_tok_s, percent=True)),
    ]
    gpus = max(len(a.gpu_used_mib), len(b.gpu_used_mib))
    for i in range(gpus):
        used_a = a.gpu_used_mib[i] if i < len(a.gpu_used_mib) else None
        used_b = b.gpu_used_mib[i] if i < len(b.gpu_used_mib) else None
        fields.append((f"VRAM GPU{i} MiB", used_a, used_b, _delta(used_a, used_b)))
    fields += [("ollama", a.ollama_version, b.ollama_version, ""),
               ("driver", a.driver_version, b.driver_version, ""),
               ("models", sorted(a.models), sorted(b.models), "")]
    changes = [Change(field=name, a=_text(va), b=_text(vb), delta=delta)
               for name, va, vb, delta in fields if _text(va) != _text(vb)]
    return HostDrift(host=b.host, changes=changes)


def compare(a: RunReport, b: RunReport, name_a: str = "A", name_b: str = "B") -> Comparison:
    """Drift of every host in both runs; hosts in one run only are listed by name."""
    in_a = {h.host: h for h in a.hosts}
    in_b = {h.host: h for h in b.hosts}
    return Comparison(a=name_a, b=name_b,
                      hosts=[host_drift(in_a[h.host], h) for h in b.hosts if h.host in in_a],
                      only_in_a=[n for n in in_a if n not in in_b],
                      only_in_b=[n for n in in_b if n not in in_a])
