"""Controller side of `probe`: resolve the model, ship the probe to each host over SSH
(host keys checked, as `verify` connects), run it, and turn its JSON into calibration rows.

The probe travels like the benchmark (bench/pyz.py): one zipapp with the bench package,
the probe package and the simulator's stdlib GGUF module, run by the host's python3.
"""

from __future__ import annotations

import datetime as _dt
import json
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coderig_deploy.bench import pyz as bench_pyz
from coderig_deploy.catalog import ModelChoice, load_catalog
from coderig_deploy.errors import UserInputError
from coderig_deploy.probe.measured import MeasuredRow
from coderig_deploy.probe.tensors import BASE_TYPE, Shape

MAIN = "import sys\nfrom coderig_deploy.probe.host import main\nsys.exit(main())\n"
_ROOT = Path(__file__).resolve().parent.parent
MIN_CTX = 256
Progress = Callable[[str, str], None]  # (host, line)


def shape_of(choice: ModelChoice) -> Shape:
    m = choice.model
    # llama 3.1 ships its rope scaling factors as a tensor (rope_freqs.weight, 64 floats).
    return Shape(arch=m.gguf_arch, layers=m.layers, heads=m.heads, kv_heads=m.kv_heads, hidden=m.hidden,
                 head_dim=m.head_dim, ffn=m.ffn, vocab=m.vocab, trained_ctx=m.trained_ctx,
                 tied_embeddings=m.tied_embeddings, experts=m.experts, experts_used=m.experts_used,
                 sliding_window=m.sliding_window, rope_freqs=m.gguf_arch == "llama" and m.trained_ctx >= 131072)


def resolve(tag: str, ctx: int) -> ModelChoice:
    """The catalog's model for `tag`; bad tags, quantizations and contexts refused here."""
    choice = load_catalog().model(tag)
    if choice.quant.quant not in BASE_TYPE:
        raise UserInputError(f"--model {tag}: the probe cannot write {choice.quant.quant} files; "
                             f"use one of {', '.join(BASE_TYPE)}")
    if not MIN_CTX <= ctx <= choice.model.trained_ctx:
        raise UserInputError(f"--ctx {ctx}: out of range for {choice.canonical_tag}; use {MIN_CTX} to "
                             f"{choice.model.trained_ctx} (its trained context)")
    return choice


def probe_name(choice: ModelChoice) -> str:
    """The Ollama name the probe creates (its own namespace, so it never meets a real model)."""
    m = choice.model
    return f"coderig-probe/{m.ollama_name}:{m.ollama_size}-{choice.quant.quant.lower()}"


def config(choice: ModelChoice, ctx: int, runs: int, workdir: str) -> dict[str, Any]:
    return {"model_tag": choice.canonical_tag, "shape": shape_of(choice).__dict__, "ftype": choice.quant.quant,
            "ctx": ctx, "name": probe_name(choice), "runs": runs, "workdir": workdir}


def pyz_bytes() -> bytes:
    members: list[tuple[Path | bytes, str]] = list(bench_pyz._members())
    members += [(p, "coderig_deploy/probe/" + p.name) for p in sorted((_ROOT / "probe").glob("*.py"))
                if p.name in ("__init__.py", "tensors.py", "gguf.py", "host.py")]
    sim = _ROOT / "sandbox" / "ollama_sim"
    members += [(b"", "coderig_deploy/sandbox/__init__.py"),  # not the lab: only the GGUF module travels
                (sim / "__init__.py", "coderig_deploy/sandbox/ollama_sim/__init__.py"),
                (sim / "gguf.py", "coderig_deploy/sandbox/ollama_sim/gguf.py")]
    return bench_pyz.zipapp_bytes(members, MAIN)


def run_on(target: Any, cfg: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Run the probe on one host (a verify.runner.Target); its JSON result, or one with `error`."""
    from coderig_deploy.verify.runner import connect  # paramiko with RejectPolicy

    client = connect(target).backend.client
    remote = f"/var/tmp/coderig-probe-{uuid.uuid4().hex[:8]}.pyz"
    sftp = client.open_sftp()
    try:
        with sftp.open(remote, "wb") as fh:
            fh.write(pyz_bytes())
        return _execute(client, target.name, remote, cfg, progress)
    finally:
        try:
            sftp.remove(remote)
        except OSError:  # the connection is gone: /var/tmp keeps a small zipapp, nothing else
            pass
        sftp.close()
        client.close()


def _execute(client: Any, host: str, remote: str, cfg: dict[str, Any], progress: Progress) -> dict[str, Any]:
    command = f"python3 {remote} {shlex.quote(json.dumps(cfg))}"
    _stdin, stdout, stderr = client.exec_command(command)
    pid = None
    try:
        for line in stderr:
            if line.startswith("probe: pid "):
                pid = line.split()[-1]
            progress(host, line.rstrip("\n"))
        out = stdout.read().decode(errors="replace")
    except KeyboardInterrupt:
        if pid and pid.isdigit():  # the host side cleans up on SIGTERM: show it doing so, then stop
            client.exec_command(f"kill -TERM {pid}")
            for line in stderr:
                progress(host, line.rstrip("\n"))
        raise
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"the probe printed no result (exit {stdout.channel.recv_exit_status()})", "steps": []}


def rows(result: dict[str, Any], choice: ModelChoice, host: str) -> list[MeasuredRow]:
    """A vram row and a speed row from one host's result (none when it did not measure)."""
    bench = result.get("bench") or {}
    summary, ps = bench.get("summary") or {}, bench.get("ps") or {}
    after = (bench.get("gpu_memory") or {}).get("gpus") or []
    before = {g["index"]: g.get("used_mib") or 0 for g in (result.get("gpu_baseline") or {}).get("gpus") or []}
    decode = (summary.get("decode_tok_s") or {}).get("median")
    if not decode or not ps:
        return []
    catalog = load_catalog()
    specs = [catalog.gpu_by_name(g["name"], g.get("total_mib")) for g in after]
    slugs = tuple(spec.slug if spec else g["name"] for spec, g in zip(specs, after))
    used = sum((g.get("used_mib") or 0) - before.get(g["index"], 0) for g in after)
    ollama = result.get("ollama") or {}
    fa = str(ollama.get("flash_attention", "auto")).lower() not in ("0", "false")
    day = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    common = {"model": choice.model.key, "quant": choice.quant.quant, "gpus": slugs, "ctx": result["ctx"],
              "kv_cache": ollama.get("kv_cache", "f16"), "flash_attn": fa,
              "engine": f"Ollama {ollama.get('version')}, num_parallel {ollama.get('num_parallel', 1)}",
              "source": f"coderig-deploy probe on {host}, {day}"}
    prefill = (summary.get("prefill_tok_s") or {}).get("median")
    # The point the rates were measured at: the prompt's length, and decode's average depth (the prompt
    # plus half the tokens generated after it).
    prompt = (summary.get("prompt_eval_count") or {}).get("median")
    generated = (summary.get("eval_count") or {}).get("median")
    # (no deeper than the context: past it Ollama shifts the cache instead of growing it)
    depth = min(round(prompt + generated / 2), result["ctx"]) if prompt and generated else None
    out = [MeasuredRow(kind="speed", value=decode, prefill_tok_s=prefill, depth=depth,
                       prompt_tokens=round(prompt) if prompt else None, **common)]
    if after and used > 0:  # nothing measured where another program freed memory meanwhile
        out.append(MeasuredRow(kind="vram", value=used, ps_size_mib=round(ps["size"] / 2**20),
                               ps_size_vram_mib=round(ps["size_vram"] / 2**20), **common))
    return out
