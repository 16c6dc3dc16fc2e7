"""The benchmark core, after llama-bench and Ollama's cmd/bench.

Preload (a request with only the model; its load time is reported apart), one
untimed warm-up, then N timed runs with temperature 0, a fixed seed, a fixed prompt
and a fixed num_predict, each streamed so time to first token is measured. Then
/api/ps, the driver's per-GPU memory and the code check.

The server's context is NOT set by the benchmark (no num_ctx option unless asked):
the point is to see the context the host was configured with.
"""

from __future__ import annotations

import datetime as _dt
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coderig_deploy.bench import codecheck, editor, gpumem
from coderig_deploy.bench.ollama_api import (DEFAULT_URL, Generation, OllamaClient,
                                             find_loaded, parse_generation, parse_ps,
                                             parse_stream)
from coderig_deploy.bench.stats import summarize
from coderig_deploy.bench.tasks import load_tasks

SCHEMA = "coderig-hostbench/1"
# A fixed prompt (~190 tokens with common code-model tokenizers; the measured count is
# reported as prompt_eval_count). Each run starts with its own two-digit tag so a
# server-side prompt cache cannot skip the prefill of a repeated prompt.
PROMPT = (
    "You are reviewing a small Python service that reads sensor readings from a queue, "
    "validates them, aggregates them per minute and writes the aggregates to a database. "
    "The team reports that under load the service falls behind, memory grows slowly over "
    "hours, and some aggregates are written twice after a restart. Explain, step by step, "
    "how you would investigate each of the three problems: what you would measure first, "
    "which tools you would use, what the likely causes are in code like this (batching, "
    "unbounded buffers, missing idempotency keys, retries without deduplication, blocking "
    "calls inside an event loop), and how you would change the design so that the service "
    "keeps up, stays within a fixed memory budget and writes every aggregate exactly once. "
    "Give concrete code-level suggestions and explain the trade-offs of each one.")


@dataclass(frozen=True)
class BenchConfig:
    """How to benchmark one model on one server."""

    model: str
    url: str = DEFAULT_URL
    runs: int = 5
    num_predict: int = 128
    seed: int = 42
    num_ctx: int | None = None
    code_tasks: tuple[str, ...] | None = None
    code_check: bool = True
    code_timeout_s: float = 10.0
    code_num_predict: int = 512
    gpu_probe: str = "auto"
    request_timeout_s: float = 600.0
    editor_models: tuple[editor.EditorModel, ...] = ()
    editor_only: bool = False


class Benchmark:
    """One benchmark run; `result` fills as it goes, so a failure keeps what was measured."""

    def __init__(self, cfg: BenchConfig, client: OllamaClient | None = None,
                 gpu_reader: Callable[[str], dict[str, Any]] = gpumem.probe) -> None:
        self.cfg = cfg
        self.client = client or OllamaClient(cfg.url, cfg.request_timeout_s)
        self.gpu_reader = gpu_reader
        self.server_ns = 0
        self.result: dict[str, Any] = {
            "schema": SCHEMA, "host": socket.gethostname(), "url": cfg.url, "model": cfg.model,
            "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": {"runs": cfg.runs, "num_predict": cfg.num_predict, "seed": cfg.seed,
                       "temperature": 0, "num_ctx": cfg.num_ctx, "prompt_chars": len(PROMPT),
                       "editor_only": cfg.editor_only},
            "ollama_version": None, "load": None, "runs": [], "summary": None,
            "warnings": [], "ps": None, "gpu_memory": None, "code_check": [],
            "timing": None, "error": None, "editor": []}

    def run(self) -> dict[str, Any]:
        """Measure everything; raises BenchError (with `result` kept) when the server fails."""
        started = time.monotonic()
        try:
            self.result["ollama_version"] = self.client.get("/api/version").get("version")
            if self.cfg.editor_only:
                self.result["editor"] = editor.measure(self.client, list(self.cfg.editor_models))
                return self.result
            self._preload()
            self._generate(self._options(self.cfg.num_predict), PROMPT)  # warm-up, untimed
            self._timed_runs()
            self._read_placement()
            if self.cfg.code_check:
                self._code_check()
            if self.cfg.editor_models:
                self.result["editor"] = editor.measure(self.client, list(self.cfg.editor_models))
        finally:
            wall = time.monotonic() - started
            server = self.server_ns / 1e9
            self.result["timing"] = {"wall_s": round(wall, 3), "server_s": round(server, 3),
                                     "overhead_s": round(wall - server, 3)}
        return self.result

    def _options(self, num_predict: int) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": 0, "seed": self.cfg.seed,
                                   "num_predict": num_predict}
        if self.cfg.num_ctx:
            options["num_ctx"] = self.cfg.num_ctx
        return options

    def _generate(self, options: dict[str, Any], prompt: str) -> Generation:
        body = {"model": self.cfg.model, "prompt": prompt, "stream": False, "options": options}
        gen = parse_generation(self.client.post("/api/generate", body))
        self.server_ns += gen.total_duration
        return gen

    def _preload(self) -> None:
        before = find_loaded(parse_ps(self.client.get("/api/ps")), self.cfg.model)
        t0 = time.monotonic()
        body: dict[str, Any] = {"model": self.cfg.model}
        if self.cfg.num_ctx:
            body["options"] = {"num_ctx": self.cfg.num_ctx}
        gen = parse_generation(self.client.post("/api/generate", body))
        wall = time.monotonic() - t0
        # Ollama's reply to a preload carries no metrics (docs/api.md, "Load a model"):
        # then the load time is the request's wall time, and it counts as server time.
        self.server_ns += gen.total_duration or int(wall * 1e9)
        self.result["load"] = {"already_loaded": before is not None,
                               "load_s": gen.load_duration / 1e9 if gen.load_duration else None,
                               "wall_s": round(wall, 3)}

    def _timed_runs(self) -> None:
        gens = []
        for number in range(1, self.cfg.runs + 1):
            prompt = f"Request {number:02d}. {PROMPT}"
            body = {"model": self.cfg.model, "prompt": prompt, "stream": True,
                    "options": self._options(self.cfg.num_predict)}
            started = self.client.clock()
            gen = parse_stream(self.client.stream("/api/generate", body), started)
            self.server_ns += gen.total_duration
            gens.append(gen)
            self.result["runs"].append({"run": number, **gen.as_dict()})
        self.result["summary"] = summarize_runs(gens)
        self.result["warnings"] += run_warnings(gens, self.cfg.num_predict)

    def _read_placement(self) -> None:
        loaded = find_loaded(parse_ps(self.client.get("/api/ps")), self.cfg.model)
        if loaded is not None:
            self.result["ps"] = {"name": loaded.name, "size": loaded.size,
                                 "size_vram": loaded.size_vram,
                                 "context_length": loaded.context_length,
                                 "gpu_percent": round(loaded.gpu_percent, 2),
                                 "processor": loaded.processor}
        self.result["gpu_memory"] = self.gpu_reader(self.cfg.gpu_probe)

    def _code_check(self) -> None:
        isolation = codecheck.detect_isolation()
        for task in load_tasks(list(self.cfg.code_tasks) if self.cfg.code_tasks else None):
            answer = self._generate(self._options(self.cfg.code_num_predict),
                                    task.request_prompt())
            code = codecheck.extract_code(answer.response, task.entry_point)
            check = codecheck.run_check(task.id, code, task.tests,
                                        self.cfg.code_timeout_s, isolation)
            self.result["code_check"].append(check.as_dict())


def summarize_runs(gens: list[Generation]) -> dict[str, Any]:
    """Statistics over the timed runs (runs without a figure are left out of its stats)."""
    def column(values: list[float | None]) -> dict[str, Any]:
        return summarize([v for v in values if v is not None])

    return {"decode_tok_s": column([g.decode_tok_s for g in gens]),
            "prefill_tok_s": column([g.prefill_tok_s for g in gens]),
            "ttft_s": column([g.ttft_s for g in gens]),
            "eval_count": column([float(g.eval_count) for g in gens]),
            "prompt_eval_count": column([float(g.prompt_eval_count) for g in gens])}


def run_warnings(gens: list[Generation], num_predict: int) -> list[str]:
    """Warnings about runs that are less comparable: ended early, no prefill figure."""
    warnings = []
    for number, gen in enumerate(gens, 1):
        if gen.eval_count < num_predict:
            warnings.append(f"run {number} generated {gen.eval_count} of {num_predict} tokens "
                            f"(done_reason {gen.done_reason!r})")
        if gen.prompt_eval_count == 0:
            warnings.append(f"run {number} reported no prompt evaluation (prompt cached?)")
    return warnings
