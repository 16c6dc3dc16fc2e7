"""One probe on this host: write the synthetic GGUF, import it into Ollama, benchmark
it at the requested context, and remove every trace (also on failure or SIGTERM).

Ollama's API (shared/reference/ollama.md): `HEAD/POST /api/blobs/sha256:<hex>` takes
the raw file (201; 400 on a digest mismatch), `POST /api/create {"model", "files":
{"name.gguf": "sha256:<hex>"}, "parameters": {"num_ctx": N}}` makes the model, and
`DELETE /api/delete` removes it with the layers no other model uses. Stdlib only.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from coderig_deploy.bench import gpumem
from coderig_deploy.bench.core import BenchConfig, Benchmark
from coderig_deploy.bench.ollama_api import OllamaClient
from coderig_deploy.errors import BenchError
from coderig_deploy.probe import gguf
from coderig_deploy.probe.tensors import Shape

SCHEMA = "coderig-probe/1"
DEFAULT_MODELS_DIR = "/usr/share/ollama/.ollama/models"  # the service's OLLAMA_MODELS default
# Room left free besides the file and its copy in the model store: logs, the server's temp files.
DISK_SLACK_BYTES = 1 << 30


class ProbeFailed(Exception):
    """The probe could not run on this host (reported in the JSON, exit 1)."""


@dataclass
class ProbeConfig:
    model_tag: str  # the catalog's canonical tag, for the report
    shape: dict[str, Any]
    ftype: str
    ctx: int
    name: str  # the Ollama model name the probe creates and deletes
    url: str = "http://127.0.0.1:11434"
    workdir: str = "/var/tmp"
    runs: int = 3
    num_predict: int = 128
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def ollama_env() -> dict[str, str]:
    """The ollama unit's Environment= settings (empty when systemd cannot say)."""
    try:
        out = subprocess.run(["systemctl", "show", "ollama", "-p", "Environment", "--value"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def check_disk(workdir: Path, models_dir: Path, file_bytes: int) -> dict[str, int]:
    """Refuse before writing when the file and its copy in the model store will not fit."""
    free_work = shutil.disk_usage(workdir).free
    store = models_dir if models_dir.exists() else models_dir.parent
    same = store.exists() and os.stat(store).st_dev == os.stat(workdir).st_dev
    need_work = file_bytes * (2 if same else 1) + DISK_SLACK_BYTES
    if free_work < need_work:
        raise ProbeFailed(f"not enough disk: {workdir} has {free_work / 2**30:.1f} GiB free, the probe needs "
                          f"{need_work / 2**30:.1f} GiB (the file{' and its copy in ' + str(models_dir) if same else ''}"
                          f" plus 1 GiB)")
    if not same and store.exists() and shutil.disk_usage(store).free < file_bytes + DISK_SLACK_BYTES:
        raise ProbeFailed(f"not enough disk: the model store {models_dir} has "
                          f"{shutil.disk_usage(store).free / 2**30:.1f} GiB free, the probe needs "
                          f"{(file_bytes + DISK_SLACK_BYTES) / 2**30:.1f} GiB")
    return {"free_bytes": free_work, "needed_bytes": need_work}


class Api:
    """The few Ollama calls the bench client does not make: blob upload, create, delete."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 11434
        self.client = OllamaClient(url)

    def _request(self, method: str, path: str, body: Any = None, length: int | None = None,
                 timeout: float = 3600) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout, blocksize=1 << 20)  # 40 GB uploads
        try:
            headers = {"Content-Length": str(length)} if length is not None else {}
            if isinstance(body, dict):
                body = json.dumps(body).encode()
                headers = {"Content-Type": "application/json"}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError as exc:
            raise ProbeFailed(f"Ollama at {self.host}:{self.port} stopped answering: {exc}") from None
        finally:
            conn.close()

    def has_blob(self, digest: str) -> bool:
        return self._request("HEAD", f"/api/blobs/{digest}")[0] == 200

    def upload(self, digest: str, path: Path) -> None:
        with open(path, "rb") as body:
            status, raw = self._request("POST", f"/api/blobs/{digest}", body, path.stat().st_size)
        if status not in (200, 201):
            raise ProbeFailed(f"Ollama refused the upload (HTTP {status}): {raw.decode(errors='replace')[:300]}")

    def create(self, name: str, digest: str, ctx: int) -> None:
        body = {"model": name, "files": {"probe.gguf": digest}, "parameters": {"num_ctx": ctx}, "stream": False}
        status, raw = self._request("POST", "/api/create", body)
        if status != 200:
            raise ProbeFailed(f"Ollama refused to create {name} (HTTP {status}): "
                              f"{raw.decode(errors='replace')[:300]}")

    def has_model(self, name: str) -> bool:
        return any(m.get("name") == name or m.get("model") == name
                   for m in self.client.get("/api/tags").get("models") or [])

    def remove(self, name: str) -> None:
        self._request("POST", "/api/generate", {"model": name, "keep_alive": 0}, timeout=120)  # unload first
        self._request("DELETE", "/api/delete", {"model": name}, timeout=120)


def _on_signal(signum: int, _frame: Any) -> None:
    raise ProbeFailed(f"interrupted (signal {signum}); cleaning up")


class Probe:
    """Runs the steps in order; `result` keeps what was measured if a step fails."""

    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        self.shape = Shape.from_dict(cfg.shape)
        self.api = Api(cfg.url)
        self.path = Path(cfg.workdir) / f"coderig-probe-{os.getpid()}.gguf"
        self.digest: str | None = None
        self.uploaded = False  # only a blob this probe uploaded is ever removed by hand
        self.result: dict[str, Any] = {"schema": SCHEMA, "model": cfg.model_tag, "name": cfg.name, "ctx": cfg.ctx,
                                       "steps": [], "error": None}

    def _step(self, name: str, **data: Any) -> None:
        self.result["steps"].append({"step": name, **data})
        print(f"probe: {name} {json.dumps(data)}", file=sys.stderr, flush=True)

    def run(self) -> dict[str, Any]:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, _on_signal)
        try:
            self._checks()
            self._generate()
            self._import()
            self._benchmark()
        except (ProbeFailed, BenchError) as exc:
            self.result["error"] = str(exc)
        finally:
            self._cleanup()
        return self.result

    def _checks(self) -> None:
        try:
            version = self.api.client.get("/api/version").get("version")
        except BenchError as exc:
            raise ProbeFailed(f"Ollama is not up on this host: {exc}") from None
        env = ollama_env()
        self.result["ollama"] = {"version": version, "kv_cache": env.get("OLLAMA_KV_CACHE_TYPE") or "f16",
                                 "flash_attention": env.get("OLLAMA_FLASH_ATTENTION", "auto"),
                                 "num_parallel": int(env.get("OLLAMA_NUM_PARALLEL") or 1)}
        size = gguf.planned_size(self.shape, self.cfg.ftype, self.cfg.name)
        models = Path(env.get("OLLAMA_MODELS") or DEFAULT_MODELS_DIR)
        self.result["models_dir"] = str(models)
        self._step("checked", ollama=version, file_bytes=size, **check_disk(Path(self.cfg.workdir), models, size))
        loaded = self.api.client.get("/api/ps").get("models") or []
        self.result["other_models_loaded"] = [m.get("name") for m in loaded]
        self.result["gpu_baseline"] = gpumem.probe()

    def _generate(self) -> None:
        started = time.monotonic()
        size, hexdigest = gguf.write_file(self.path, self.shape, self.cfg.ftype, self.cfg.name, self.cfg.seed)
        self.digest = f"sha256:{hexdigest}"
        self.result["file"] = {"bytes": size, "digest": self.digest, "seconds": round(time.monotonic() - started, 1)}
        self._step("generated", bytes=size, digest=self.digest)

    def _import(self) -> None:
        assert self.digest is not None
        started = time.monotonic()
        if not self.api.has_blob(self.digest):
            self.uploaded = True
            self.api.upload(self.digest, self.path)
        self.api.create(self.cfg.name, self.digest, self.cfg.ctx)
        self._step("imported", seconds=round(time.monotonic() - started, 1))
        self.path.unlink(missing_ok=True)  # the store holds the copy now: free the disk early

    def _benchmark(self) -> None:
        bench = Benchmark(BenchConfig(model=self.cfg.name, url=self.cfg.url, runs=self.cfg.runs,
                                      num_predict=self.cfg.num_predict, num_ctx=self.cfg.ctx, code_check=False))
        try:
            bench.run()
        finally:
            self.result["bench"] = bench.result
        self._step("benchmarked", summary=bench.result.get("summary"), ps=bench.result.get("ps"))

    def _cleanup(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # finish cleaning up whatever happens now
        left: dict[str, Any] = {}
        try:
            self.api.remove(self.cfg.name)
        except ProbeFailed as exc:
            left["remove_error"] = str(exc)
        self.path.unlink(missing_ok=True)
        if self.digest and self.uploaded:
            blob = Path(self.result.get("models_dir", DEFAULT_MODELS_DIR)) / "blobs" / self.digest.replace(":", "-")
            blob.unlink(missing_ok=True)  # uploaded but never made a model: Ollama would keep it until a restart
        try:
            left["model_left"] = self.api.has_model(self.cfg.name)
            left["blob_left"] = bool(self.digest) and self.api.has_blob(self.digest)
        except (ProbeFailed, BenchError) as exc:
            left["check_error"] = str(exc)
        left["file_left"] = self.path.exists()
        self.result["cleanup"] = left
        self._step("cleaned", **left)


def main(argv: list[str] | None = None) -> int:
    """`python3 coderig-probe.pyz CONFIG_JSON`: one JSON document on stdout."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: coderig-probe.pyz CONFIG_JSON", file=sys.stderr)
        return 2
    print(f"probe: pid {os.getpid()}", file=sys.stderr, flush=True)
    result = Probe(ProbeConfig(**json.loads(args[0]))).run()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 1 if result["error"] else 0
