"""Build the Ollama simulator as an Ollama release: ``ollama-linux-amd64.tar.zst``
(``bin/ollama`` + ``lib/ollama/...``, reference/ollama.md, Install layout) and a
``sha256sum.txt`` beside it, laid out like GitHub's release download paths.

The build is deterministic (sorted entries, fixed owner and mtime), so the same
sources give the same archive and checksum.
"""

from __future__ import annotations

import dataclasses

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy import fit
from coderig_deploy.catalog import load_catalog
from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox.ollama_sim import VERSION
from coderig_deploy.sandbox.ollama_sim.textgen import bench_task_answers

ARCHIVE = "ollama-linux-amd64.tar.zst"
CHECKSUMS = "sha256sum.txt"
MTIME = 1767225600  # 2026-01-01T00:00:00Z: fixed so builds are reproducible
_SIM_DIR = Path(__file__).resolve().parent / "ollama_sim"
_BENCH_TASKS = Path(__file__).resolve().parent.parent / "bench" / "tasks"

LAUNCHER = '''#!/usr/bin/python3 -I
# coderig-deploy sandbox: the Ollama simulator, installed like the real binary.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "lib", "ollama"))
from ollama_sim.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
'''


@dataclass(frozen=True)
class Release:
    version: str
    directory: Path  # .../ollama/releases/download/v<version>
    archive: Path
    sha256: str

    def url_path(self) -> str:
        """Path of the archive below the artifacts server's root."""
        return f"ollama/releases/download/v{self.version}/{ARCHIVE}"


def catalog_facts() -> dict[str, object]:
    """The catalog constants the simulator's fit needs (engine, runtime, quant types)."""
    catalog = load_catalog()
    runtime_keys = ("cuda_overhead_mib", "fit_margin_mib", "batch_size", "system_ram_bandwidth_gbs", "decode_depth")
    # Every fit.Device field but the name, per catalog GPU: the simulator then places and times a model
    # exactly as `plan` does (SM-sized CUDA context, driver reservation, compute ceiling).
    devices = {slug: {k: v for k, v in dataclasses.asdict(catalog.device(slug)).items()
                      if k not in ("name", "memory_mib", "bandwidth_gbs")} for slug in catalog.gpus}
    return {
        "source": "coderig_deploy/data/{engines,runtime,quants,gpus,gpu_architectures}.tsv (each row names its source)",
        "engine": dataclasses.asdict(catalog.engine("ollama")),
        "runtime": {key: catalog.runtime[key] for key in runtime_keys},
        "quants": {q.quant: {"embd_bpw": q.embd_bpw, "output_bpw": q.output_bpw,
                             "decode_ops_per_weight": q.decode_ops_per_weight} for q in catalog.quants.values()},
        "devices": devices,
    }


def _files() -> dict[str, tuple[bytes, int]]:
    """Archive member name -> (content, mode)."""
    files: dict[str, tuple[bytes, int]] = {"bin/ollama": (LAUNCHER.encode(), 0o755)}
    for path in sorted(_SIM_DIR.iterdir()):
        if path.is_file() and path.suffix in (".py", ".json"):
            files[f"lib/ollama/ollama_sim/{path.name}"] = (path.read_bytes(), 0o644)
    files["lib/ollama/ollama_sim/_fit.py"] = (Path(fit.__file__).read_bytes(), 0o644)
    answers = {"source": "coderig_deploy/bench/tasks/*.json (reference solutions)",
               "answers": bench_task_answers(_BENCH_TASKS)}
    files["lib/ollama/ollama_sim/bench_answers.json"] = (json.dumps(answers, indent=1, sort_keys=True).encode(), 0o644)
    files["lib/ollama/coderig_sim_catalog.json"] = (json.dumps(catalog_facts(), indent=1, sort_keys=True).encode(), 0o644)
    return files


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted({str(Path(name).parents[i]) for name in files for i in range(len(Path(name).parents) - 1)})
        for name in dirs:
            info = tarfile.TarInfo(f"./{name}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            _own(info)
            tar.addfile(info)
        for name in sorted(files):
            data, mode = files[name]
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(data), mode
            _own(info)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _own(info: tarfile.TarInfo) -> None:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = MTIME


def _zstd(data: bytes) -> bytes:
    if shutil.which("zstd") is None:
        raise EnvironmentProblem("zstd is needed to build the simulator release: apt-get install zstd")
    result = subprocess.run(["zstd", "-q", "-19", "-c"], input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise EnvironmentProblem(f"zstd failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def build_release(root: Path) -> Release:
    """Write the archive and sha256sum.txt under `root`/ollama/releases/download/v<version>/."""
    directory = root / "ollama" / "releases" / "download" / f"v{VERSION}"
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / ARCHIVE
    payload = _zstd(_tar(_files()))
    archive.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    (directory / CHECKSUMS).write_text(f"{digest}  ./{ARCHIVE}\n")
    return Release(VERSION, directory, archive, digest)
