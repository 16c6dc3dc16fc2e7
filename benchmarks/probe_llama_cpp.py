#!/usr/bin/env python3
"""Load the probe's generated GGUF files in a real llama.cpp build and run them: what llama.cpp reads from each
file (architecture, tensor bytes, parameter count) against what the probe meant to write, and its speeds.

    python benchmarks/probe_llama_cpp.py --bin LLAMA_CPP/build/bin [--ngl 99] [--models TAG...] [--json FILE]
    python benchmarks/probe_llama_cpp.py --bin LLAMA_CPP/build/bin --quant-mix
    python benchmarks/probe_llama_cpp.py --bin LLAMA_CPP/build/bin --compute-buffers [--models TAG...]

LLAMA_CPP/build/bin needs llama-bench and llama-completion: llama.cpp's source is in the llama-cpp-python sdist
on PyPI (vendor/llama.cpp); `cmake -B build -DLLAMA_CURL=OFF [-DGGML_CUDA=ON]` then `cmake --build build --target
llama-bench llama-completion llama-quantize`. Without --ngl every layer runs on the CPU, which checks that llama.cpp
accepts the file (tensor names, shapes, quantization types, metadata, tokenizer) and generates from it; with a GPU
(--ngl 99, --gpu SLUG, --prompt 512 --gen 128) the speeds are llama-bench's pp512 and tg128, printed beside what
`plan` predicts for that GPU. Each file is deleted after its run. Exits 1 when llama.cpp refuses a file or reads
it otherwise than the probe wrote it.

--quant-mix checks the other half (it needs llama-quantize): for every model and quantization of the catalog,
llama.cpp's quantizer is asked which type it would give each tensor of the model's F16 file, and the answer is
compared with the type the probe writes. Exits 1 when any differs. --compute-buffers prints the compute buffer
llama.cpp's graph allocator reserves for each model (one 512-token ubatch, 512 to 16384 cells, flash attention off
and on) beside the one fit.py plans: the memory model's third part, checked on architectures and contexts the
published load logs do not cover.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from coderig_deploy import fit
from coderig_deploy.calibration import Case
from coderig_deploy.catalog import ModelChoice, load_catalog
from coderig_deploy.probe import gguf
from coderig_deploy.probe.remote import probe_name, shape_of
from coderig_deploy.probe.tensors import tensors

# One model per architecture the catalog's tags use (qwen2, starcoder2, llama with and without rope_freqs, qwen3moe).
DEFAULT_MODELS = ["qwen2.5-coder:1.5b", "starcoder2:3b", "deepseek-coder:6.7b", "llama3.1:8b", "qwen3-coder:30b"]
PROMPT = "def fibonacci(n):"
ENGINE = "llama.cpp"  # engines.tsv: current builds


def _elements(choice: ModelChoice) -> int:
    """Weights the probe writes (what llama.cpp counts as the model's parameters)."""
    return sum(t.elements for t in tensors(shape_of(choice), choice.quant.quant))


def _run(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, errors="replace", check=False,
                          timeout=1800, stdin=subprocess.DEVNULL)


def _bench(binary: Path, path: Path, ngl: int, threads: int, prompt: int, gen: int) -> dict[str, object]:
    out = _run(binary, "-m", path, "-p", prompt, "-n", gen, "-r", 1, "-o", "json", "-ngl", ngl, "-t", threads,
               "-fa", 1)
    if out.returncode:
        raise RuntimeError(f"llama-bench refused {path.name} (exit {out.returncode}): {out.stderr.strip()[-800:]}")
    rows = json.loads(out.stdout)
    first = rows[0]
    return {"type": first["model_type"], "size": int(first["model_size"]), "params": int(first["model_n_params"]),
            "pp": next((r["avg_ts"] for r in rows if r["n_prompt"] and not r["n_gen"]), None),
            "tg": next((r["avg_ts"] for r in rows if r["n_gen"] and not r["n_prompt"]), None)}


def _complete(binary: Path, path: Path, ngl: int, threads: int) -> str:
    """Tokenize a prompt, evaluate it and sample 8 tokens greedily. llama.cpp aborts on non-finite logits only in
    debug builds, so the check is that it runs to the end and prints the prompt back whole."""
    out = _run(binary, "-m", path, "-p", PROMPT, "-n", 8, "--temp", 0, "-c", 512, "-ngl", ngl, "-t", threads,
               "-no-cnv", "--no-warmup")
    if out.returncode or PROMPT not in out.stdout:
        raise RuntimeError(f"llama-completion failed on {path.name} (exit {out.returncode}): "
                           f"{(out.stderr or out.stdout).strip()[-800:]}")
    return out.stdout.split(PROMPT, 1)[1][:40]


def _predicted(tag: str, gpu: str, kind: str, tokens: int) -> float:
    """What `plan` predicts for llama-bench's pp<tokens> (a prompt into an empty cache) or tg<tokens> (decode
    from an empty cache: its mean depth is half the test), flash attention on as the benchmark runs."""
    ctx, depth = (tokens, tokens // 2) if kind == "prefill" else (max(256, tokens), tokens // 2)
    case = Case("probe", kind, tag, tag, (gpu,), ctx, depth, True, 1.0, None, ENGINE, "probe_llama_cpp.py")
    return case.predicted()


_QUANTIZED = re.compile(r"\]\s+(\S+)\s+- \[.*?\], type =\s+(\S+), size = [^(]*(?:\((\w+)\))?\s*$")


def _sparse_file(choice: ModelChoice, ftype: str, path: Path) -> Path:
    """The probe's file of the model at `ftype` with its weights left a hole: for llama.cpp runs that never read
    them (a quantizer's dry run, a model load without repacking)."""
    shape, name = shape_of(choice), probe_name(choice)
    path.write_bytes(gguf.encode_header(gguf.metadata(shape, ftype, name), tensors(shape, ftype)))
    os.truncate(path, gguf.planned_size(shape, ftype, name))
    return path


_COMPUTE = re.compile(r"CPU compute buffer size =\s+([\d.]+) MiB")


def compute_buffer_mib(binary: Path, path: Path, cells: int, flash_attention: bool) -> float:
    """llama.cpp's own compute buffer for the file at `cells` (one ubatch of 512, as Ollama runs it): the graph
    allocator's reservation that a CPU-only run logs; no weight is read (--no-repack), so a sparse file does."""
    out = _run(binary, "-m", path, "-p", "x", "-n", 1, "-c", cells, "-b", 512, "-ub", 512, "-ngl", 0,
               "-fa", "on" if flash_attention else "off", "-t", 1, "-no-cnv", "--no-warmup", "--no-repack", "-v")
    found = _COMPUTE.findall(out.stderr)
    if out.returncode or not found:
        raise RuntimeError(f"llama-completion failed on {path.name} (exit {out.returncode}): {out.stderr[-800:]}")
    return float(found[-1])


def _compute_buffers(binary: Path, models: list[str], workdir: Path | None) -> int:
    """llama.cpp's compute buffer for each model at 512-16384 cells, flash attention off and on, against fit's.
    A CPU-only run keeps the ubatch's input embeddings (ubatch x hidden, f32) in the same buffer, where a GPU
    run has them in system RAM (the token embedding lookup runs on the CPU): they are added to fit's figure."""
    catalog, worst = load_catalog(), 0.0
    print(f"{'model':22} {'cells':>6} {'fa':3} {'llama.cpp':>10} {'fit':>9} {'+ embd':>9} {'diff':>8}  MiB")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for tag in models:
            choice = catalog.model(tag)
            arch = choice.model.architecture()
            path = _sparse_file(choice, choice.quant.quant, Path(tmp) / "sparse.gguf")
            for cells in (512, 4096, 16384):
                for fa in (False, True):
                    got = compute_buffer_mib(binary, path, cells, fa)
                    planned = fit.compute_buffer_bytes(arch, cells, 512, fa, True, arch.layers) / fit.MIB
                    embd = 512 * arch.hidden * fit.F32 / fit.MIB
                    worst = max(worst, abs(got - planned - embd) / got)
                    print(f"{tag:22} {cells:6} {'on' if fa else 'off':3} {got:10.2f} {planned:9.2f} "
                          f"{planned + embd:9.2f} {got - planned - embd:+8.2f}")
            path.unlink()
    print(f"largest difference: {worst:.1%} of llama.cpp's buffer")
    return 0


def quantizer_types(binary: Path, choice: ModelChoice, workdir: Path) -> dict[str, str]:
    """Each tensor's type as llama.cpp's own quantizer picks it (`llama-quantize --dry-run`) for the probe's F16
    file of the model: a sparse file, header only, as the dry run reads no weights."""
    path = _sparse_file(choice, "F16", workdir / "f16.gguf")
    try:
        out = _run(binary, "--dry-run", path, choice.quant.quant)
    finally:
        path.unlink()
    found = {m.group(1): (m.group(3) or m.group(2)).upper()
             for m in map(_QUANTIZED.search, (out.stdout + out.stderr).splitlines()) if m}
    if out.returncode or not found:
        raise RuntimeError(f"llama-quantize --dry-run failed (exit {out.returncode}): {out.stderr.strip()[-800:]}")
    return found


def _quant_mix(binary: Path, workdir: Path | None) -> int:
    """Every catalog model at every quantization the probe writes: its types against the quantizer's."""
    catalog, failed = load_catalog(), 0
    print(f"{'model':38} {'tensors':>7} {'differ':>6}  first difference (probe -> llama-quantize)")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for tag in catalog.model_tags():
            choice = catalog.model(tag)
            if choice.quant.quant == "F16":
                continue
            ours = {t.name: t.ggml_type for t in tensors(shape_of(choice), choice.quant.quant)}
            theirs = quantizer_types(binary, choice, Path(tmp))
            differ = sorted(n for n in ours.keys() | theirs.keys() if ours.get(n) != theirs.get(n))
            failed += bool(differ)
            first = f"{differ[0]}: {ours.get(differ[0])} -> {theirs.get(differ[0])}" if differ else ""
            print(f"{tag:38} {len(ours):7} {len(differ):6}  {first}")
    print(f"{failed} model files differ from llama.cpp's quantizer")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, required=True, help="llama.cpp's build/bin")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--ngl", type=int, default=0, help="layers on the GPU (0: CPU only)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens of llama-bench's pp test")
    parser.add_argument("--gen", type=int, default=4, help="tokens of llama-bench's tg test")
    parser.add_argument("--gpu", default=None, help="catalog slug of the GPU (with --ngl 99): plan's speeds beside")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp"),
                        help="where the files are written, up to 19 GB each (default: /var/tmp, on disk)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here too")
    parser.add_argument("--quant-mix", action="store_true",
                        help="instead: every catalog model's tensor types against llama-quantize --dry-run's")
    parser.add_argument("--compute-buffers", action="store_true",
                        help="instead: llama.cpp's compute buffer for --models against fit's (a report; sparse "
                             "files, no weight written)")
    args = parser.parse_args()
    if args.quant_mix:
        return _quant_mix(args.bin / "llama-quantize", args.workdir)
    if args.compute_buffers:
        return _compute_buffers(args.bin / "llama-completion", args.models, args.workdir)
    if args.gpu and (args.prompt < 256 or args.gen < 1 or args.ngl < 1):
        parser.error("--gpu compares a GPU run with plan: give --ngl 99 --prompt 512 --gen 128 (plan plans "
                     "contexts of 256 tokens and more)")

    catalog = load_catalog()
    rows = []
    print(f"{'model':22} {'quant':6} {'arch read':10} {'file GB':>8} {'tensor bytes':>13} {'params':>14} "
          f"{'pp t/s':>8} {'tg t/s':>7}  completion")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for tag in args.models:
            row = _check_file(args, catalog.model(tag), Path(tmp) / "probe.gguf")
            rows.append(row)
            _print_row(tag, row, args)
    failed = sum(not r["ok"] for r in rows)
    print(f"{len(rows) - failed} of {len(rows)} files loaded and read as written")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 1 if failed else 0


def _check_file(args: argparse.Namespace, choice: ModelChoice, path: Path) -> dict[str, Any]:
    """Write the model's probe file, run llama-bench and llama-completion on it, delete it."""
    shape, ftype, name = shape_of(choice), choice.quant.quant, probe_name(choice)
    written, _ = gguf.write_file(path, shape, ftype, name)
    header = len(gguf.encode_header(gguf.metadata(shape, ftype, name), tensors(shape, ftype)))
    row: dict[str, Any] = {"model": choice.canonical_tag, "quant": ftype, "file_bytes": written,
                           "arch_written": shape.arch, "params_written": _elements(choice)}
    try:
        row |= _bench(args.bin / "llama-bench", path, args.ngl, args.threads, args.prompt, args.gen)
        row["completion"] = _complete(args.bin / "llama-completion", path, args.ngl, args.threads)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError, IndexError) as err:
        return row | {"ok": False, "error": f"{type(err).__name__}: {err}"}
    finally:
        path.unlink(missing_ok=True)
    # llama.cpp's model size is the tensors' bytes: the file less its header and the alignment padding.
    row["ok"] = (row["type"].split(" ")[0] == row["arch_written"] and row["params"] == row["params_written"]
                 and 0 <= written - header - row["size"] < 32 * 1024)
    if args.gpu:
        row["plan_pp"] = _predicted(choice.canonical_tag, args.gpu, "prefill", args.prompt)
        row["plan_tg"] = _predicted(choice.canonical_tag, args.gpu, "decode", args.gen)
    return row


def _print_row(tag: str, row: dict[str, Any], args: argparse.Namespace) -> None:
    if "error" in row:
        print(f"{tag:22} FAILED: {row['error']}")
        return
    print(f"{tag:22} {row['quant']:6} {row['type'][:10]:10} {row['file_bytes'] / 1e9:8.3f} {row['size']:13,} "
          f"{row['params']:14,} {row['pp'] or 0:8.1f} {row['tg'] or 0:7.2f}  {row['completion']!r}"
          + ("" if row["ok"] else f"  MISMATCH: written as {row['arch_written']}, "
             f"{row['params_written']:,} parameters"))
    if "plan_pp" in row:
        pp, tg = row["plan_pp"], row["plan_tg"]
        print(f"{'':22} plan on {args.gpu}: pp{args.prompt} {pp:.1f} ({pp / row['pp'] - 1:+.1%}), "
              f"tg{args.gen} {tg:.2f} ({tg / row['tg'] - 1:+.1%})")


if __name__ == "__main__":
    sys.exit(main())
