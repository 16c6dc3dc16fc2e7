"""Read calibration measurements (benchmarks/calibration.tsv) into plan requests.

The file is written for people: "1 (24GB class)", "512/128", "off/on",
"20.213 / 20.119 GiB". This module turns each row into one or more cases with a
plan request and a measured value, stating each interpretation it makes.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.planner import Plan, make_plan

# llama-server's default context in the b4xxx builds the row names (common.h n_ctx = 4096).
LLAMA_SERVER_DEFAULT_CTX = 4096
# llama-bench "512/128": pp512 and tg128 are separate tests; tg128 starts from an empty
# cache, so the cache holds 64 tokens on average while generating.
LLAMA_BENCH_TG_DEPTH = 64


@dataclass(frozen=True)
class Case:
    kind: str  # "vram" or "speed"
    label: str
    model_tag: str
    gpus: tuple[str, ...]
    ctx: int
    flash_attention: bool
    measured: float  # MiB or tok/s
    depth: int
    source: str

    def plan(self) -> Plan:
        return make_plan(self.model_tag, list(self.gpus), self.ctx, "f16", self.flash_attention, depth=self.depth)

    def predicted(self) -> float:
        p = self.plan()
        return float(p.vram_mib) if self.kind == "vram" else p.decode_tok_s


def _tag(model: str, quant: str) -> str:
    key = re.sub(r"\s*\(.*\)", "", model)
    m = re.search(r"same tensors as ([\w.\-]+)", model)
    if m:
        key = m.group(1)
    family, size = key.rsplit("-", 1)
    infix = "-instruct" if not family.startswith("starcoder2") else ""
    return f"{family}:{size}{infix}-{quant.lower().replace('q4_k_m', 'q4_K_M')}"


def _gpus(text: str) -> tuple[str, ...]:
    if "24GB class" in text:
        return ("rtx-3090",)  # memory use does not depend on which 24 GB card
    m = re.fullmatch(r"(?:(\d+)x\s*)?([\w\-]+)", text.strip())
    if not m:
        raise ValueError(f"cannot read GPUs {text!r}")
    return (m.group(2),) * int(m.group(1) or 1)


def _ctx(text: str) -> tuple[int, int]:
    """(allocated context, depth while decoding)."""
    if text.startswith("llama-server default"):
        return LLAMA_SERVER_DEFAULT_CTX, 512
    if "/" in text:  # llama-bench pp/tg
        pp, tg = (int(x) for x in text.split("/"))
        return pp + tg, LLAMA_BENCH_TG_DEPTH
    return int(text), 512


def _values(text: str, unit: str) -> list[float]:
    scale = 1024.0 if unit.startswith("GiB") else 1.0
    return [float(v) * scale for v in text.split("/")]


def load_cases(path: Path) -> list[Case]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    cases = []
    for row in csv.DictReader(lines, delimiter="\t"):
        ctx, depth = _ctx(row["ctx"])
        fa_values = [v.strip() == "on" for v in row["flash_attn"].split("/")]
        values = _values(row["value"], row["unit"])
        for fa, value in zip(fa_values if len(values) > 1 else fa_values[:1], values):
            label = f"{row['model'].split(' ')[0]} {row['quant']} {row['gpus']} ctx {row['ctx']} fa {'on' if fa else 'off'}"
            cases.append(Case(row["kind"], label, _tag(row["model"], row["quant"]), _gpus(row["gpus"]), ctx, fa,
                              value, depth, row["source"]))
    return cases
