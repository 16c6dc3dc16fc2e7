"""Calibration rows measured by `probe`: written, read back, and laid over a Plan so
a measurement wins over the model. (benchmarks/calibration.tsv, the public data the
planner's constants are fitted on, has columns of its own and is not read here.)

Row format (one vram row and one speed row per host and probe):
    kind  model  quant  gpus  ctx  kv_cache  flash_attn  engine  value  unit  source
`gpus` is a slug or "Nx slug" (one slug per card, ' + ' between different cards);
`unit` carries the extra figures as calibration.tsv's human rows do:
    vram:  "MiB (nvidia-smi); ollama ps size 1234 MiB, size_vram 1234 MiB"
    speed: "tok/s (pp 4567.8)"            decode tok/s in `value`, prefill in `pp`
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from coderig_deploy.errors import UserInputError
from coderig_deploy.planner import Plan

COLUMNS = ("kind", "model", "quant", "gpus", "ctx", "kv_cache", "flash_attn", "engine", "value", "unit", "source")
HEADER = ("# Measured by `coderig-deploy probe` (synthetic GGUF with the model's exact tensors, imported into\n"
          "# the host's Ollama, smoke benchmark at the given context). Columns as benchmarks/calibration.tsv.\n")
_PP = re.compile(r"\(pp ([0-9.]+)\)")
_PS = re.compile(r"ollama ps size (\d+) MiB, size_vram (\d+) MiB")


class MeasuredRow(BaseModel):
    kind: str = Field(description="vram or speed")
    model: str = Field(description="catalog model key, e.g. qwen2.5-coder-1.5b")
    quant: str
    gpus: tuple[str, ...] = Field(description="one GPU slug per card")
    ctx: int
    kv_cache: str
    flash_attn: bool
    engine: str
    value: float = Field(description="MiB on the GPUs (vram) or decode tok/s (speed)")
    prefill_tok_s: float | None = None
    ps_size_mib: int | None = None
    ps_size_vram_mib: int | None = None
    source: str

    def unit(self) -> str:
        if self.kind == "speed":
            return f"tok/s (pp {self.prefill_tok_s:.1f})" if self.prefill_tok_s else "tok/s"
        ps = f"; ollama ps size {self.ps_size_mib} MiB, size_vram {self.ps_size_vram_mib} MiB" \
            if self.ps_size_mib is not None else ""
        return "MiB (nvidia-smi)" + ps


def gpus_text(gpus: tuple[str, ...]) -> str:
    counts = Counter(gpus)
    return " + ".join(slug if n == 1 else f"{n}x {slug}" for slug, n in counts.items())


def _gpus(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in text.split("+"):
        m = re.fullmatch(r"\s*(?:(\d+)x\s*)?([\w.\-]+)\s*", part)
        if not m:
            raise ValueError(f"cannot read GPUs {text!r}")
        out += [m.group(2)] * int(m.group(1) or 1)
    return tuple(out)


def to_tsv(rows: list[MeasuredRow]) -> str:
    buf = io.StringIO()
    buf.write(HEADER)
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        value = f"{r.value:.0f}" if r.kind == "vram" else f"{r.value:.2f}"
        writer.writerow([r.kind, r.model, r.quant, gpus_text(r.gpus), r.ctx, r.kv_cache,
                         "on" if r.flash_attn else "off", r.engine, value, r.unit(), r.source])
    return buf.getvalue()


def read_rows(path: Path) -> list[MeasuredRow]:
    """Rows of a probe calibration file; rows of other shapes (llama-bench "512/128"
    contexts, "off/on" pairs) are skipped, since they do not name one setup."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"--calibration {path}: cannot read: {exc.strerror}") from None
    lines = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.startswith("#")]
    if not lines or tuple(lines[0][1].split("\t")) != COLUMNS:
        raise UserInputError(f"{path}: not a calibration file written by `coderig-deploy probe` (the first row "
                             "must be the columns "
                             f"{' '.join(COLUMNS)})")
    rows = []
    for number, line in lines[1:]:
        fields = dict(zip(COLUMNS, line.split("\t")))
        if len(fields) != len(COLUMNS):
            raise UserInputError(f"{path}:{number}: expected {len(COLUMNS)} tab-separated columns")
        row = _row(fields)
        if row is not None:
            rows.append(row)
    return rows


def _row(f: dict[str, str]) -> MeasuredRow | None:
    if f["kind"] not in ("vram", "speed") or not f["ctx"].isdigit() or f["flash_attn"] not in ("on", "off"):
        return None
    try:
        value, gpus = float(f["value"]), _gpus(f["gpus"])
    except ValueError:
        return None
    pp, ps = _PP.search(f["unit"]), _PS.search(f["unit"])
    return MeasuredRow(kind=f["kind"], model=f["model"], quant=f["quant"], gpus=gpus, ctx=int(f["ctx"]),
                       kv_cache=f["kv_cache"], flash_attn=f["flash_attn"] == "on", engine=f["engine"],
                       value=value, prefill_tok_s=float(pp.group(1)) if pp else None,
                       ps_size_mib=int(ps.group(1)) if ps else None,
                       ps_size_vram_mib=int(ps.group(2)) if ps else None, source=f["source"])


def matching(rows: list[MeasuredRow], plan: Plan, model_key: str) -> dict[str, MeasuredRow]:
    """The last row of each kind measured for exactly this plan's setup: same model and
    quantization, the same GPUs (in any order), context, KV cache type and flash attention."""
    found: dict[str, MeasuredRow] = {}
    for r in rows:
        if (r.model == model_key and r.quant == plan.quant and sorted(r.gpus) == sorted(plan.gpus)
                and r.ctx == plan.ctx and r.kv_cache == plan.kv_cache and r.flash_attn == plan.flash_attention):
            found[r.kind] = r
    return found


def apply(plan: Plan, rows: list[MeasuredRow], model_key: str) -> Plan:
    """`plan` with its predicted figures replaced by measured ones where a row matches,
    each replacement stated in the notes."""
    found = matching(rows, plan, model_key)
    update: dict[str, object] = {}
    notes = list(plan.notes)
    speed, vram = found.get("speed"), found.get("vram")
    if speed:
        update["decode_tok_s"] = round(speed.value, 2)
        notes.append(f"measured decode {speed.value:.1f} tok/s (model: {plan.decode_tok_s:.1f}) from {speed.source}")
        if speed.prefill_tok_s:
            update["prefill_tok_s"] = speed.prefill_tok_s
            notes.append(f"measured prefill {speed.prefill_tok_s:.0f} tok/s from {speed.source}")
        # Time to first token as the planner defines it: the prompt's prefill plus one decode step.
        prefill = float(update.get("prefill_tok_s", plan.prefill_tok_s))
        ttft = (plan.prompt_tokens / prefill if prefill > 0 else 0.0) + 1.0 / speed.value
        update["time_to_first_token_s"] = round(ttft, 3)
    if vram:
        update["vram_mib"] = round(vram.value)
        notes.append(f"measured {vram.value:.0f} MiB on GPU (model: {plan.vram_mib}) from {vram.source}")
        if vram.ps_size_mib and vram.ps_size_vram_mib is not None:
            update |= {"ps_size_mib": vram.ps_size_mib, "ps_size_vram_mib": vram.ps_size_vram_mib,
                       "gpu_fraction": round(vram.ps_size_vram_mib / vram.ps_size_mib, 4)}
            if vram.ps_size_vram_mib < vram.ps_size_mib:
                update["fits"] = False
                notes.append("measured: part of the model ran from system RAM (ollama ps below 100% GPU)")
    if not found:
        notes.append(f"no measured row for {model_key} {plan.quant} on {gpus_text(tuple(plan.gpus)) or 'CPU'} "
                     f"at ctx {plan.ctx} ({plan.kv_cache} KV cache, flash attention "
                     f"{'on' if plan.flash_attention else 'off'}): figures are the model's")
    update["notes"] = notes
    return plan.model_copy(update=update)
