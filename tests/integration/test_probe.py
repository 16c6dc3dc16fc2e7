"""`coderig-deploy probe` on a booted sandbox host: the GGUF is generated ON the host,
imported into its Ollama (the simulator, installed as a release archive under systemd)
through /api/blobs and /api/create, benchmarked at the requested context, and removed;
the calibration rows it writes are then used by `plan --calibration`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.planner import make_plan
from coderig_deploy.sandbox import HostSpec, Lab
from coderig_deploy.probe import measured
from tests.integration.test_ollama_sim_host import install

pytestmark = pytest.mark.integration

HOST = "sim1"  # the name test_ollama_sim_host.install works on
TAG = "qwen2.5-coder:1.5b"  # ~1 GB file: small enough for a test
CTX = 8192
CLI = [sys.executable, "-m", "coderig_deploy"]


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    lab = sandbox_lab([HostSpec(name=HOST, gpu="rtx-4090", count=1)], name="probe")
    install(lab)
    return lab


def _probe(lab: Lab, runs_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    host = lab.host(HOST)
    return subprocess.run([*CLI, "probe", "--model", TAG, "--ctx", str(CTX), "--identity", str(lab.key),
                           "--known-hosts", str(lab.known_hosts), "--runs-dir", str(runs_dir), "--runs", "2",
                           *extra, f"root@{host.ip}"], capture_output=True, text=True, timeout=600, check=False)


def _store(lab: Lab) -> set[str]:
    out = lab.ssh(HOST, "cd /usr/share/ollama/.ollama/models && find . -type f | sort", timeout=60).stdout
    return set(out.split())


def test_probe_measures_cleans_up_and_feeds_plan(lab: Lab, tmp_path: Path) -> None:
    before = _store(lab)
    proc = _probe(lab, tmp_path / "runs", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    name = f"root@{lab.host(HOST).ip}"  # hosts are named as given on the command line
    summary = doc["hosts"][name]
    assert summary["error"] is None and summary["clean"]
    # generation: the file the host wrote is the real model's size within 1% (986 MB, Ollama's library)
    assert abs(summary["file_bytes"] - 986e6) / 986e6 < 0.01
    assert "probe: generated" in proc.stderr and "probe: imported" in proc.stderr
    # benchmark: at the requested context, all on the GPU, VRAM read from the (simulated) driver
    raw = json.loads((Path(doc["run_dir"]) / "probe.json").read_text())[name]
    assert raw["bench"]["ps"]["context_length"] == CTX and summary["gpu_percent"] == 100.0
    assert summary["decode_tok_s"] > 0 and summary["prefill_tok_s"] > 0 and summary["gpus"][0] > 1000
    # cleanup: no model, no blob, no generated file, no zipapp left on the host
    assert _store(lab) == before
    assert "coderig-probe" not in lab.ssh(HOST, "curl -fsS 127.0.0.1:11434/api/tags", timeout=30).stdout
    assert "coderig-probe" not in lab.ssh(HOST, "ls -a /var/tmp", timeout=30).stdout
    # calibration rows, used by plan --calibration over the model's prediction
    rows = measured.read_rows(Path(doc["run_dir"]) / "calibration.tsv")
    assert {r.kind for r in rows} == {"speed", "vram"} and all(r.gpus == ("rtx-4090",) for r in rows)
    speed = next(r for r in rows if r.kind == "speed")
    plan = subprocess.run([*CLI, "plan", "--model", TAG, "--gpu", "rtx-4090", "--ctx", str(CTX),
                           "--calibration", str(Path(doc["run_dir"]) / "calibration.tsv"), "--json"],
                          capture_output=True, text=True, timeout=120, check=True)
    planned = json.loads(plan.stdout)
    # the row records where it was measured (the benchmark's prompt length and decode depth); plan carries
    # it from there to its own depth by the model's shape
    prompt_eval = raw["bench"]["summary"]["prompt_eval_count"]["median"]
    assert speed.prompt_tokens == round(prompt_eval) and speed.depth is not None and speed.depth > prompt_eval
    predicted = make_plan(TAG, ["rtx-4090"], CTX)
    at = make_plan(TAG, ["rtx-4090"], CTX, prompt_tokens=speed.prompt_tokens, depth=speed.depth)
    assert planned["decode_tok_s"] == pytest.approx(speed.value * predicted.decode_tok_s / at.decode_tok_s, abs=0.01)
    assert any(n.startswith(f"measured decode {speed.value:.1f} tok/s at depth {speed.depth}")
               for n in planned["notes"])
    # and the first token of its 4096-token prompt from the measured prefill, scaled as the model scales
    model_rate = speed.prompt_tokens / (at.time_to_first_token_s - 1 / at.decode_tok_s)
    prefill_s = (predicted.time_to_first_token_s - 1 / predicted.decode_tok_s) * model_rate / speed.prefill_tok_s
    assert planned["time_to_first_token_s"] == pytest.approx(prefill_s + 1 / planned["decode_tok_s"], abs=2e-3)
    vram = next(r for r in rows if r.kind == "vram")
    assert planned["vram_mib"] == round(vram.value)
    assert any(n.endswith(f"(model: {predicted.vram_mib}) from {vram.source}") for n in planned["notes"])


def test_probe_refuses_a_host_whose_ollama_is_down(lab: Lab, tmp_path: Path) -> None:
    lab.ssh(HOST, "systemctl stop ollama", timeout=60)
    try:
        proc = _probe(lab, tmp_path / "runs")
    finally:
        lab.ssh(HOST, "systemctl start ollama && for i in $(seq 50); do curl -fs 127.0.0.1:11434/api/version "
                      "&& exit 0; sleep 0.1; done; exit 1", timeout=60)
    assert proc.returncode == 1
    assert "Ollama is not up on this host" in proc.stdout
    assert "coderig-probe" not in lab.ssh(HOST, "ls -a /var/tmp", timeout=30).stdout


def test_an_interrupted_probe_leaves_nothing_on_the_host(lab: Lab, tmp_path: Path) -> None:
    import signal

    before = _store(lab)
    host = lab.host(HOST)
    # The CLI gets SIGINT's default action whatever this process inherited: a suite started in the background
    # of a non-interactive shell ignores SIGINT, an ignored signal survives exec, and Python then installs no
    # KeyboardInterrupt handler, so the probe would run to the end and exit 0.
    proc = subprocess.Popen([*CLI, "probe", "--model", TAG, "--ctx", str(CTX), "--identity", str(lab.key),
                             "--known-hosts", str(lab.known_hosts), "--runs-dir", str(tmp_path / "runs"),
                             f"root@{host.ip}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # interrupt once the model is in the host's Ollama
        seen.append(line)
        if "probe: imported" in line:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()  # not communicate(): it would skip what the line iterator buffered
    proc.wait(timeout=300)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "probe: cleaned" in rest and '"model_left": false' in rest and '"blob_left": false' in rest
    assert _store(lab) == before
    assert "coderig-probe" not in lab.ssh(HOST, "ls -a /var/tmp; curl -fsS 127.0.0.1:11434/api/tags", timeout=30).stdout
