"""Calibration rows measured by `probe`: written, read back, and laid over a Plan so
a measurement wins over the model. (benchmarks/calibration.tsv, the public data the
planner's constants are fitted on, has columns of its own and is not read here.)

Row format (one vram row and one speed row per host and probe):
    kind  model  quant  gpus  ctx  kv_cache  flash_attn  engine  value  unit  source
`gpus` is a slug or "Nx slug" (one slug per card, ' + ' between different cards);
`unit` carries the extra figures as calibration.tsv's human rows do:
    vram:  "MiB (nvidia-smi); ollama ps size 1234 MiB, size_vram 1234 MiB"
    speed: "tok/s at depth 556, prompt 492 tokens (pp 4567.8)"
           decode tok/s in `value`, measured with 556 tokens in the cache on average;
           prefill tok/s over a 492-token prompt into an empty cache
(rows written before the depth and prompt length were recorded read "tok/s (pp 4567.8)";
readers of that format still find the prefill rate in the new one).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator

from coderig_deploy.catalog import load_catalog
from coderig_deploy.errors import UserInputError
from coderig_deploy.planner import Plan
from coderig_deploy.safetext import safe

COLUMNS = ("kind", "model", "quant", "gpus", "ctx", "kv_cache", "flash_attn", "engine", "value", "unit", "source")
HEADER = ("# Measured by `coderig-deploy probe` (synthetic GGUF with the model's exact tensors, imported into\n"
          "# the host's Ollama, smoke benchmark at the given context). Columns as benchmarks/calibration.tsv.\n")
_PP = re.compile(r"\(pp ([0-9.]+)\)")
_DEPTH = re.compile(r"at depth (\d+)")
_PROMPT = re.compile(r"prompt (\d+) tokens")
_PS = re.compile(r"ollama ps size (\d+) MiB, size_vram (\d+) MiB")


class MeasuredRow(BaseModel):
    kind: str = Field(description="vram or speed")
    model: str = Field(description="catalog model key, e.g. qwen2.5-coder-1.5b")
    quant: str
    gpus: tuple[str, ...] = Field(description="one GPU slug per card")
    ctx: int = Field(gt=0)
    kv_cache: str
    flash_attn: bool
    engine: str
    value: float = Field(gt=0, allow_inf_nan=False, description="MiB on the GPUs (vram) or decode tok/s (speed)")
    prefill_tok_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    depth: int | None = Field(None, ge=0, description="tokens in the cache on average while decode was measured")
    prompt_tokens: int | None = Field(None, gt=0, description="prompt length the prefill rate was measured over")
    ps_size_mib: int | None = Field(None, gt=0)
    ps_size_vram_mib: int | None = Field(None, ge=0)
    source: str

    @model_validator(mode="after")
    def _within_its_setup(self) -> MeasuredRow:
        """A row a probe could have written: depth and prompt inside the context, `ollama ps`'s share on the
        GPU no larger than the model, and no more memory than its GPUs have (where the catalog knows them)."""
        for name in ("depth", "prompt_tokens"):
            if (getattr(self, name) or 0) > self.ctx:
                raise ValueError(f"{name} {getattr(self, name)} is beyond the context ({self.ctx})")
        if self.ps_size_mib is not None and (self.ps_size_vram_mib or 0) > self.ps_size_mib:
            raise ValueError(f"ollama ps size_vram {self.ps_size_vram_mib} MiB is more than its size "
                             f"{self.ps_size_mib} MiB")
        if self.kind == "vram":
            gpus = load_catalog().gpus
            if all(g in gpus for g in self.gpus) and self.value > sum(gpus[g].vram_mib for g in self.gpus):
                raise ValueError(f"{self.value:.0f} MiB is more than {gpus_text(self.gpus)} hold")
        return self

    def unit(self) -> str:
        if self.kind == "speed":
            at = f" at depth {self.depth}" if self.depth is not None else ""
            prompt = f", prompt {self.prompt_tokens} tokens" if self.prompt_tokens else ""
            return f"tok/s{at}{prompt}" + (f" (pp {self.prefill_tok_s:.1f})" if self.prefill_tok_s else "")
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
    lines = [HEADER + "\t".join(COLUMNS)]
    for r in rows:
        value = f"{r.value:.0f}" if r.kind == "vram" else f"{r.value:.2f}"
        fields = (r.kind, r.model, r.quant, gpus_text(r.gpus), r.ctx, r.kv_cache, "on" if r.flash_attn else "off",
                  r.engine, value, r.unit(), r.source)
        lines.append("\t".join(_field(str(v)) for v in fields))
    return "\n".join(lines) + "\n"


def _field(value: str) -> str:
    """A column as written: a host's text (its GPU names, its Ollama's version) with control characters, tabs
    and newlines as printable escapes, so each row stays one line of COLUMNS fields and reads back as written."""
    return safe(value).replace("\t", "\\x09").replace("\n", "\\x0a")


def read_rows(path: Path) -> list[MeasuredRow]:
    """Rows of a probe calibration file; rows of other shapes (llama-bench "512/128"
    contexts, "off/on" pairs) are skipped, since they do not name one setup."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"--calibration {path}: cannot read: {exc.strerror}") from None
    # split at newlines only: splitlines() would also cut at other controls, which are refused below
    lines = [(n, ln.removesuffix("\r")) for n, ln in enumerate(text.split("\n"), 1)
             if ln.strip() and not ln.startswith("#")]
    if not lines or tuple(lines[0][1].split("\t")) != COLUMNS:
        raise UserInputError(f"{path}: not a calibration file written by `coderig-deploy probe` (the first row "
                             "must be the columns "
                             f"{' '.join(COLUMNS)})")
    rows = []
    for number, line in lines[1:]:
        fields = dict(zip(COLUMNS, line.split("\t")))
        if len(fields) != len(COLUMNS):
            raise UserInputError(f"{path}:{number}: expected {len(COLUMNS)} tab-separated columns")
        bad = next((k for k, v in fields.items() if safe(v) != v), None)
        if bad:
            raise UserInputError(f"{path}:{number}: column {bad} holds a control character: '{safe(fields[bad])}' "
                                 "(a probe writes none)")
        try:
            row = _row(fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UserInputError(f"{path}:{number}: {where + ': ' if where else ''}"
                                 f"{first['msg'].removeprefix('Value error, ')} (not a measurement)") from None
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
    depth, prompt = _DEPTH.search(f["unit"]), _PROMPT.search(f["unit"])
    return MeasuredRow(kind=f["kind"], model=f["model"], quant=f["quant"], gpus=gpus, ctx=int(f["ctx"]),
                       kv_cache=f["kv_cache"], flash_attn=f["flash_attn"] == "on", engine=f["engine"],
                       value=value, prefill_tok_s=float(pp.group(1)) if pp else None,
                       prompt_tokens=int(prompt.group(1)) if prompt else None,
                       depth=int(depth.group(1)) if depth else None,
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


# The plan of the same setup (model, GPUs, context, cache, options) for a prompt length and a decode depth.
Replan = Callable[[int, int], Plan]


def _prompt_rate(p: Plan) -> float | None:
    """The average prefill rate over `p`'s prompt: its length over its time to first token less one decode
    step (None without a prompt or a prefill time)."""
    seconds = p.time_to_first_token_s - 1 / p.decode_tok_s
    return p.prompt_tokens / seconds if p.prompt_tokens and seconds > 0 else None


def apply(plan: Plan, rows: list[MeasuredRow], model_key: str, replan: Replan) -> Plan:
    """`plan` with its predicted figures replaced by measured ones where a row matches,
    each replacement stated in the notes.

    A speed row is measured at one point: decode at the depth the benchmark's cache held, prefill over
    its prompt (the smoke benchmark's: a few hundred tokens). The plan asks for others (decode at
    --depth, time to first token for --prompt-tokens), where the rates differ: KV reads and attention
    grow with depth, and a short prompt fills fewer of a GPU's tiles. So the model is taken where the
    row was measured (`replan`), and each rate it predicts for the plan is scaled by measured / model
    at that point: the measurement sets the level, the model the slope. Rows that do not record the
    point (written before they did) are taken as measured at the plan's own."""
    found = matching(rows, plan, model_key)
    update: dict[str, object] = {}
    notes = list(plan.notes)
    speed, vram = found.get("speed"), found.get("vram")
    if speed:
        depth = plan.decode_depth if speed.depth is None else speed.depth
        prompt = speed.prompt_tokens or plan.prompt_tokens
        at = plan if (prompt, depth) == (plan.prompt_tokens, plan.decode_depth) else replan(prompt, depth)
        decode = plan.decode_tok_s * speed.value / at.decode_tok_s
        update["decode_tok_s"] = round(decode, 2)
        moved = round(decode, 1) != round(speed.value, 1)
        carried = f", so {decode:.1f} at depth {plan.decode_depth}" if moved else ""
        notes.append(f"measured decode {speed.value:.1f} tok/s at depth {depth} (model at that point: "
                     f"{at.decode_tok_s:.1f}){carried}; from {speed.source}")
        prefill_s = max(0.0, plan.time_to_first_token_s - 1 / plan.decode_tok_s)
        model_rate = _prompt_rate(at)
        if speed.prefill_tok_s and model_rate:
            ratio = speed.prefill_tok_s / model_rate
            update["prefill_tok_s"] = round(plan.prefill_tok_s * ratio, 1)
            prefill_s /= ratio
            carried = (f", so {prefill_s + 1 / decode:.2f} s to the first token of the {plan.prompt_tokens}-token "
                       "prompt" if prompt != plan.prompt_tokens and prefill_s > 0 else "")
            notes.append(f"measured prefill {speed.prefill_tok_s:.0f} tok/s over a {prompt}-token prompt "
                         f"(model at that point: {model_rate:.0f}){carried}; from {speed.source}")
        if speed.depth is None or speed.prompt_tokens is None:
            notes.append("the measured row does not record its depth or prompt length: taken as this plan's")
        # Time to first token as the planner defines it: the prompt's prefill plus one decode step (none
        # without a prompt).
        if plan.time_to_first_token_s:
            update["time_to_first_token_s"] = round(prefill_s + 1.0 / decode, 3)
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
