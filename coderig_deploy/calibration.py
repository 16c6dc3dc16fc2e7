"""Read calibration measurements (benchmarks/calibration.tsv) into plan requests.

Each row names a catalog model tag, the GPUs, the context the runtime allocated, the
depth (tokens in the KV cache) the measurement averages over, and the measured value:
memory in use (vram, MiB), generated tokens/s (decode) or prompt tokens/s (prefill).
Rows are either `fit` (the constants in data/*.tsv were chosen on them) or `held-out`
(from other sources, kept to check the fit).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from statistics import median
from pathlib import Path

from coderig_deploy.catalog import GIB, _read_tsv
from coderig_deploy.planner import Plan, make_plan

KINDS = ("vram", "decode", "prefill")
SETS = ("fit", "held-out", "seed", "excluded")
# llama-bench's -ub in a row's unit: "tok/s (pp4096 at ubatch 64)"; a decode row's is 1: "(pp512 at ubatch 1 = ...)"
UBATCH = re.compile(r"\bat ubatch (\d+)\b")


def stated_ubatch(unit: str) -> int | None:
    """The microbatch size a row's unit states (llama-bench -ub), None for the runtime's default."""
    m = UBATCH.search(unit)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Case:
    set: str  # "fit", "held-out", "seed" (the seed guide's estimates) or "excluded" (runs their own source shows
    # as broken, or measured on Windows: the rules in calibration.tsv's header): seed and excluded rows are printed,
    # never fitted or scored
    kind: str  # "vram", "decode" or "prefill"
    label: str
    model_tag: str
    gpus: tuple[str, ...]
    ctx: int
    depth: int
    flash_attention: bool
    measured: float  # MiB or tok/s
    file_bytes: int | None
    engine: str
    source: str
    unit: str = ""

    @property
    def last_logits_only(self) -> bool:
        """A decode row measured as a prompt run one token per ubatch (llama-bench -ub 1): decode kernels,
        but only the last token's logits are computed, so the output layer is skipped for the others."""
        return self.kind == "decode" and self.ubatch == 1

    @property
    def ubatch(self) -> int | None:
        """The microbatch size the row states (stated_ubatch)."""
        return stated_ubatch(self.unit)

    @property
    def prompt_start(self) -> int:
        """Tokens in the cache before a prefill row's prompt: `depth` averages the test, so a prompt
        from `start` to `ctx` has depth (start + ctx) / 2 (llama-bench pp512@d32768: ctx 33280, depth
        33024). Rows of a prompt into an empty cache give its middle or 0: start 0."""
        return max(0, 2 * self.depth - self.ctx) if self.kind == "prefill" else 0

    def plan(self) -> Plan:
        # A prefill row measures the prompt from prompt_start to ctx: time to first token less one decode step.
        return make_plan(self.model_tag, list(self.gpus), self.ctx, "f16", self.flash_attention,
                         depth=self.depth or None, file_bytes=self.file_bytes, engine=self.engine,
                         prompt_tokens=self.ctx - self.prompt_start, prompt_start=self.prompt_start,
                         logits_every_token=not self.last_logits_only,
                         ubatch=self.ubatch if self.kind == "prefill" else None)

    def predicted(self) -> float:
        p = self.plan()
        if self.kind == "prefill":
            return p.prompt_tokens / (p.time_to_first_token_s - 1 / p.decode_tok_s)
        return float(p.vram_mib) if self.kind == "vram" else p.decode_tok_s

    @property
    def error(self) -> float:
        return self.predicted() / self.measured - 1


def _gpus(text: str) -> tuple[str, ...]:
    m = re.fullmatch(r"(?:(\d+)x\s*)?([\w\-]+)", text.strip())
    if not m:
        raise ValueError(f"cannot read GPUs {text!r}")
    return (m.group(2),) * int(m.group(1) or 1)


def _case(row: dict[str, str]) -> Case:
    if row["kind"] not in KINDS or row["set"] not in SETS:
        raise ValueError(f"bad calibration row {row}")
    fa = row["flash_attn"].strip() == "on"
    file_bytes = None if row["file_gib"] in ("", "-") else int(float(row["file_gib"]) * GIB)
    label = f"{row['model'].split(':')[0]}:{row['model'].split(':')[1].split('-')[0]} {row['model'].rsplit('-', 1)[1]} " \
            f"{row['gpus']} ctx {row['ctx']} fa {'on' if fa else 'off'}"
    ubatch = stated_ubatch(row["unit"])
    if row["kind"] == "prefill" and ubatch:
        label += f" ub {ubatch}"
    return Case(row["set"], row["kind"], label, row["model"], _gpus(row["gpus"]), int(row["ctx"]), int(row["depth"]),
                fa, float(row["value"]), file_bytes, row["engine"], row["source"], row["unit"])


def load_cases(path: Path) -> list[Case]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return [_case(row) for row in csv.DictReader(lines, delimiter="\t")]


@dataclass(frozen=True)
class UsableCase:
    """One card of data/driver_reserved.tsv: the memory CUDA itself reports on Linux (median of its captures)
    against the plan's usable memory (memory.total less the driver's modelled reservation)."""

    gpu: str
    total_mib: int
    cuda_mib: float
    captures: int
    planned_mib: int

    @property
    def error_mib(self) -> float:
        return self.planned_mib - self.cuda_mib


def usable_cases() -> list[UsableCase]:
    """Every card of data/driver_reserved.tsv, in the file's order, each planned once."""
    totals: dict[str, tuple[int, list[int]]] = {}
    for row in _read_tsv("driver_reserved.tsv"):
        totals.setdefault(row["gpu"], (int(row["smi_total_mib"]), []))[1].append(int(row["cuda_total_mib"]))
    return [UsableCase(gpu, total, median(cuda), len(cuda), make_plan("qwen2.5-coder:1.5b", [gpu], 4096).usable_mib)
            for gpu, (total, cuda) in totals.items()]
