"""Loaded models: context choice, placement, keep-alive expiry, eviction, and the
usage file the simulated nvidia-smi reads (docs/simulation-seam.md)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .envconfig import Config
from .faults import Faults
from .placement import Gpu, Placement, Planner, load_gpus
from .store import Model

GIB_MIB = 1024


class LoadFailed(Exception):
    """The runner did not come up; the message is Ollama's error text."""


def auto_context(gpus: list[Gpu]) -> int:
    """OLLAMA_CONTEXT_LENGTH=0 (v0.15.5+): total VRAM < ~23 GiB -> 4096, >= 23 -> 32768,
    >= 47 -> 262144 (ollama.md, Server environment); the caller caps it at the trained context."""
    total_gib = sum(g.memory_mib for g in gpus) / GIB_MIB
    if total_gib >= 47:
        return 262144
    if total_gib >= 23:
        return 32768
    return 4096


def trained_context(model: Model) -> int:
    arch = model.model_info.get("general.architecture")
    return int(model.model_info.get(f"{arch}.context_length", 0) or 0)


@dataclass
class Runner:
    name: str
    model: Model
    ctx: int
    placement: Placement
    slots: threading.Semaphore
    loaded_at: float
    expires_at: float | None = None  # None: forever
    busy: int = 0
    last_used: float = field(default_factory=time.monotonic)


class Scheduler:
    def __init__(self, config: Config, planner: Planner, constants: dict[str, Any]) -> None:
        self.config = config
        self.planner = planner
        self.constants = constants
        self.runners: dict[str, Runner] = {}
        self.lock = threading.RLock()
        self.load_lock = threading.Lock()
        self.runner_path = str(Path(__file__).resolve().parent.parent / "llama-server")

    # context and placement ----------------------------------------------
    def gpus(self) -> list[Gpu]:
        return load_gpus(self.config.gpus_file, self.config.driver_file)

    def context_for(self, model: Model, options: dict[str, Any], gpus: list[Gpu], faults: Faults) -> int:
        """Request num_ctx, else the model's PARAMETER num_ctx, else OLLAMA_CONTEXT_LENGTH, else auto."""
        ctx = int(options.get("num_ctx") or model.params.get("num_ctx") or self.config.context_length or 0)
        if ctx <= 0:
            ctx = auto_context(gpus)
        trained = trained_context(model)
        if trained:
            ctx = min(ctx, trained)  # llama-server caps n_ctx at the trained context
        if faults.context_override:
            ctx = faults.context_override
        return ctx

    def flash_attention(self, gpus: list[Gpu]) -> bool:
        return self.config.flash_attention if self.config.flash_attention is not None else bool(gpus)

    def _placement(self, model: Model, ctx: int, gpus: list[Gpu], faults: Faults) -> Placement:
        req = self.planner.request(model.model_info, model.weights_bytes(), gpus, ctx,
                                   self.config.kv_cache_type, self.flash_attention(gpus),
                                   self.config.num_parallel, _spread())
        return self.planner.place(req, gpus, faults.partial_offload)

    # loading -------------------------------------------------------------
    def acquire(self, model: Model, options: dict[str, Any], faults: Faults) -> tuple[Runner, float]:
        """A runner for `model` with a free slot; returns it and the seconds spent loading."""
        key = model.name.display()
        gpus = self.gpus()
        ctx = self.context_for(model, options, gpus, faults)
        load_seconds = 0.0
        with self.load_lock:
            with self.lock:
                runner = self.runners.get(key)
                stale = runner is not None and (runner.ctx != ctx or runner.model.digest != model.digest)
            if stale and runner is not None:
                self._wait_idle(runner)
                self.unload(key)
                runner = None
            if runner is None:
                runner, load_seconds = self._load(key, model, ctx, gpus, faults)
            with self.lock:
                runner.busy += 1
                runner.expires_at = None
        runner.slots.acquire()
        return runner, load_seconds

    def _load(self, key: str, model: Model, ctx: int, gpus: list[Gpu], faults: Faults) -> tuple[Runner, float]:
        placement = self._placement(model, ctx, gpus, faults)
        if faults.crash_on_load:
            if faults.crash_on_load == "exit":
                log(f'msg="llama runner terminated" model={key} error="signal: segmentation fault"; server exiting')
                os._exit(2)
            raise LoadFailed("llama runner process has terminated: exit status 2")
        self._make_room(key, placement, gpus)
        started = time.monotonic()
        const = self.constants
        seconds = max(model.weights_bytes() / (float(const["load_bandwidth_gbs"]["value"]) * 1e9),
                      float(const["min_load_seconds"]["value"]))
        time.sleep(seconds * self.config.time_scale)
        runner = Runner(key, model, ctx, placement, threading.Semaphore(self.config.num_parallel), time.time())
        with self.lock:
            self.runners[key] = runner
        log(f'msg="llama runner started" model={key} ctx={ctx} parallel={self.config.num_parallel} '
            f'layers.offload={placement.layers_on_gpu}/{placement.layers_total} size={placement.size} '
            f'size_vram={placement.size_vram}')
        self.write_usage()
        overhead = max(time.monotonic() - started - seconds * self.config.time_scale, 0.0)
        return runner, seconds + overhead

    def _make_room(self, key: str, placement: Placement, gpus: list[Gpu]) -> None:
        """Evict idle models (least recently used first) over OLLAMA_MAX_LOADED_MODELS or VRAM."""
        limit = self.config.max_loaded_models or 3 * max(len(gpus), 1)
        totals = {g.index: g.memory_mib for g in gpus}
        while True:
            with self.lock:
                others = [r for r in self.runners.values() if r.name != key]
                used = {i: sum(r.placement.per_gpu_mib.get(i, 0) for r in others) for i in totals}
                over_vram = any(used[i] + placement.per_gpu_mib.get(i, 0) > totals[i] for i in totals)
                idle = sorted((r for r in others if r.busy == 0), key=lambda r: r.last_used)
            if not (len(others) + 1 > limit or over_vram) or not idle:
                return
            self.unload(idle[0].name)

    def _wait_idle(self, runner: Runner) -> None:
        while True:
            with self.lock:
                if runner.busy == 0:
                    return
            time.sleep(0.01)

    def release(self, runner: Runner, keep_alive: float) -> None:
        """End a request; schedule the unload per keep-alive (negative: never, 0: now)."""
        runner.slots.release()
        with self.lock:
            runner.busy -= 1
            runner.last_used = time.monotonic()
            if runner.busy == 0:
                runner.expires_at = None if keep_alive < 0 else time.time() + keep_alive
        if keep_alive == 0:
            self.expire()

    def unload(self, key: str) -> bool:
        with self.lock:
            runner = self.runners.pop(key, None)
        if runner is not None:
            log(f'msg="unloaded model" model={key}')
            self.write_usage()
        return runner is not None

    def expire(self) -> None:
        now = time.time()
        with self.lock:
            done = [r.name for r in self.runners.values()
                    if r.busy == 0 and r.expires_at is not None and r.expires_at <= now]
        for key in done:
            self.unload(key)

    def run_expiry(self, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            self.expire()

    def snapshot(self) -> list[Runner]:
        with self.lock:
            return sorted(self.runners.values(), key=lambda r: r.loaded_at)

    # usage file ----------------------------------------------------------
    def usage(self) -> dict[str, Any]:
        per_gpu: dict[int, int] = {}
        processes = []
        for runner in self.snapshot():
            for index, mib in sorted(runner.placement.per_gpu_mib.items()):
                if mib <= 0:
                    continue
                per_gpu[index] = per_gpu.get(index, 0) + mib
                processes.append({"pid": os.getpid(), "name": self.runner_path, "gpu_index": index,
                                  "used_mib": mib, "model": runner.name})
        return {"gpus": [{"index": i, "used_mib": m} for i, m in sorted(per_gpu.items())],
                "processes": processes}

    def write_usage(self) -> None:
        path = self.config.usage_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(self.usage()))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:
            log(f'level=WARN msg="cannot write {path}: {exc}"')

    def clear_usage(self) -> None:
        try:
            self.config.usage_file.unlink()
        except OSError:
            pass


def _spread() -> bool:
    return os.environ.get("OLLAMA_SCHED_SPREAD", "").strip().lower() in ("1", "true")


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    level = "" if message.startswith("level=") else "level=INFO "
    print(f"time={stamp} {level}source=coderig-sim {message}", file=sys.stderr, flush=True)
