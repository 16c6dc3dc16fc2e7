"""`python3 coderig-bench.pyz --model M [...]`: benchmark this host, print one JSON document.

Exit status: 0 the verdict is pass or warn (or no expectations were given and the
benchmark completed); 1 the verdict is fail or the benchmark could not complete;
2 bad arguments. The JSON is printed in every case but bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from coderig_deploy.bench.core import BenchConfig, Benchmark
from coderig_deploy.bench.editor import EditorModel
from coderig_deploy.bench.ollama_api import DEFAULT_URL
from coderig_deploy.bench.verdict import Expectations, judge
from coderig_deploy.errors import BenchError


def _gpu_plan(text: str) -> dict[int, int]:
    """"0=20000,1=12000" -> {0: 20000, 1: 12000} (MiB per GPU index)."""
    plan = {}
    for item in filter(None, text.split(",")):
        index, _, mib = item.partition("=")
        plan[int(index)] = int(mib)
    return plan


def _editor_model(text: str) -> EditorModel:
    try:
        return EditorModel.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coderig-bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--url", default=DEFAULT_URL)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--num-predict", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--num-ctx", type=int, help="force a context (default: the server's own)")
    p.add_argument("--no-code-check", action="store_true")
    p.add_argument("--code-task", action="append", help="run only this task (repeatable)")
    p.add_argument("--gpu-probe", choices=("auto", "pynvml", "nvidia-smi"), default="auto")
    p.add_argument("--expect-decode", type=float, help="expected decode tok/s")
    p.add_argument("--tolerance", type=float, default=0.0, help="tok/s below expected allowed")
    p.add_argument("--expect-ctx", type=int, help="context length the host must report")
    p.add_argument("--plan-gpu-mib", type=_gpu_plan, default={}, help='e.g. "0=20000,1=12000"')
    p.add_argument("--editor", action="append", type=_editor_model, default=[], metavar="MODEL=ROLE",
                   help="editor checks of MODEL for ROLE chat|autocomplete|embeddings (repeatable)")
    p.add_argument("--editor-only", action="store_true", help="only the editor checks (what verify runs)")
    p.add_argument("--expect-chat-ttft-ms", type=float, help="time to first token a chat may take")
    p.add_argument("--expect-fim-ttft-ms", type=float, help="time to first token an autocompletion may take")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.runs < 1 or args.num_predict < 1:
        parser().error("--runs and --num-predict must be at least 1")
    cfg = BenchConfig(model=args.model, url=args.url, runs=args.runs,
                      num_predict=args.num_predict, seed=args.seed, num_ctx=args.num_ctx,
                      code_check=not args.no_code_check, gpu_probe=args.gpu_probe,
                      code_tasks=tuple(args.code_task) if args.code_task else None,
                      editor_models=tuple(args.editor), editor_only=args.editor_only)
    if args.editor_only and not args.editor:
        parser().error("--editor-only needs at least one --editor MODEL=ROLE")
    bench = Benchmark(cfg)
    try:
        result = bench.run()
    except BenchError as exc:
        result = bench.result
        result["error"] = str(exc)
    exp = Expectations(decode_tok_s=args.expect_decode, tolerance_tok_s=args.tolerance,
                       num_ctx=args.expect_ctx, planned_gpu_mib=args.plan_gpu_mib,
                       require_code_check=not args.no_code_check,
                       chat_ttft_ms=args.expect_chat_ttft_ms, fim_ttft_ms=args.expect_fim_ttft_ms)
    result["verdict"] = judge(result, exp)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 1 if result["verdict"]["status"] == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
