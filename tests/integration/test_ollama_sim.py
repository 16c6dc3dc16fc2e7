"""The official `ollama` Python client (PyPI) drives the simulator.

First against a simulator started here from its release archive and a local
docker-registry (no hosts needed), then (marked integration) on a sandbox host.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from coderig_deploy.bench import codecheck
from coderig_deploy.planner import make_plan
from tests.integration.ollama_sim_support import LocalSim, start_registry, stop_pid, unpack_release

BASE = "qwen2.5-coder:14b-instruct-q4_K_M"
SMALL = "starcoder2:3b"
TASKS = Path(__file__).resolve().parents[2] / "coderig_deploy" / "bench" / "tasks"


@pytest.fixture(scope="module")
def registry_address(workdir: Path) -> Iterator[str]:
    reg = start_registry(workdir, [BASE, SMALL])
    yield reg.address
    stop_pid(reg.pid)


@pytest.fixture(scope="module")
def prefix(workdir: Path) -> Path:
    return unpack_release(workdir)


@pytest.fixture(scope="module")
def sim(prefix: Path, workdir: Path) -> Iterator[LocalSim]:
    server = LocalSim(prefix, workdir / "host")
    server.root.mkdir(parents=True)
    server.set_gpus("rtx-4090", 1)
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def client(sim: LocalSim) -> Iterator[ollama.Client]:
    sim.set_faults()  # every test starts well-behaved
    yield ollama.Client(host=sim.url, timeout=120)
    sim.set_faults()
    for model in ollama.Client(host=sim.url).ps().models:
        ollama.Client(host=sim.url).generate(model=model.model, keep_alive=0)


@pytest.fixture(scope="module")
def base(sim: LocalSim, registry_address: str) -> str:
    name = f"{registry_address}/library/{BASE}"
    events = list(ollama.Client(host=sim.url).pull(name, insecure=True, stream=True))
    assert events[-1].status == "success"
    return name


@pytest.fixture(scope="module")
def variant(sim: LocalSim, base: str) -> str:
    name = "coderig/qwen2.5-coder-14b:16k"
    ollama.Client(host=sim.url).create(model=name, from_=base, parameters={"num_ctx": 16384})
    return name


def test_version_endpoint_and_cli(sim: LocalSim) -> None:
    assert httpx.get(f"{sim.url}/api/version").json() == {"version": "0.33.3"}
    assert sim.cli("--version").stdout.strip() == "ollama version is 0.33.3"


def test_pull_streams_documented_progress(client: ollama.Client, registry_address: str) -> None:
    name = f"{registry_address}/library/{SMALL}"
    events = list(client.pull(name, insecure=True, stream=True))
    statuses = [e.status for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-4:] == ["verifying sha256 digest", "writing manifest", "removing any unused layers", "success"]
    layers = [e for e in events if e.digest]
    assert {e.status for e in layers} == {f"pulling {e.digest[7:19]}" for e in layers}
    assert len({e.digest for e in layers}) == 5  # 4 layers + config
    assert all(e.total and e.completed == e.total for e in layers if e.completed is not None)
    assert any(e.completed is None for e in layers)  # `completed` missing at first
    client.delete(name)


def test_pull_errors_arrive_as_error_objects(client: ollama.Client, registry_address: str) -> None:
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        list(client.pull(f"{registry_address}/library/nosuchmodel:1b", insecure=True, stream=True))
    with pytest.raises(ollama.ResponseError, match="pull model manifest"):  # https to a plain-http registry
        list(client.pull(f"{registry_address}/library/{SMALL}", stream=True))


def test_list_and_show_report_the_real_model(client: ollama.Client, base: str) -> None:
    listed = {m.model: m for m in client.list().models}
    assert base in listed
    entry = listed[base]
    assert entry.details.quantization_level == "Q4_K_M" and entry.details.family == "qwen2"
    assert entry.size > 8_900_000_000  # the real file's size, not the stub's
    shown = client.show(base)
    assert shown.modelinfo["general.architecture"] == "qwen2"
    assert shown.modelinfo["qwen2.block_count"] == 48
    assert shown.modelinfo["qwen2.attention.head_count_kv"] == 8
    assert shown.modelinfo["qwen2.context_length"] == 32768
    assert shown.details.parameter_size == "14.8B"
    assert "<|im_start|>" in shown.template


def test_create_variant_with_num_ctx(client: ollama.Client, variant: str) -> None:
    shown = client.show(variant)
    assert "num_ctx" in shown.parameters and "16384" in shown.parameters
    assert "PARAMETER num_ctx 16384" in shown.modelfile


def test_cli_create_from_modelfile_list_and_rm(sim: LocalSim, base: str, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {base}\nPARAMETER num_ctx 8192\n")
    created = sim.cli("create", "cli/variant:8k", "-f", str(modelfile))
    assert created.returncode == 0 and created.stdout.strip().endswith("success"), created.stderr
    assert "cli/variant:8k" in sim.cli("list").stdout
    assert sim.cli("rm", "cli/variant:8k").stdout.strip() == "deleted 'cli/variant:8k'"
    missing = sim.cli("rm", "cli/variant:8k")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_generate_is_deterministic_timed_and_as_fast_as_the_plan(client: ollama.Client, variant: str) -> None:
    options = {"num_predict": 48, "temperature": 0, "seed": 7}
    first = client.generate(model=variant, prompt="Explain a hash map.", options=options)
    second = client.generate(model=variant, prompt="Explain a hash map.", options=options)
    assert first.response == second.response and first.response
    assert first.eval_count == 48 and first.done_reason == "length"
    assert first.load_duration and first.load_duration > 0.5e9  # cold load of ~9 GB
    assert second.load_duration is None or second.load_duration < 0.1e9  # warm: omitted when zero
    for r in (first, second):
        assert r.prompt_eval_count and r.prompt_eval_duration and r.eval_duration and r.total_duration
        assert r.total_duration >= r.eval_duration + r.prompt_eval_duration
    plan = make_plan(BASE, ["rtx-4090"], 16384, kv_cache="f16", flash_attention=True, parallel=1)
    measured = second.eval_count / second.eval_duration * 1e9
    assert measured == pytest.approx(plan.decode_tok_s, rel=0.1)


def test_generate_stream_equals_the_single_answer(client: ollama.Client, variant: str) -> None:
    options = {"num_predict": 20, "temperature": 0}
    whole = client.generate(model=variant, prompt="Write a haiku.", options=options)
    started = time.monotonic()
    chunks = list(client.generate(model=variant, prompt="Write a haiku.", options=options, stream=True))
    elapsed = time.monotonic() - started
    assert "".join(c.response for c in chunks) == whole.response
    assert [c.done for c in chunks].count(True) == 1 and chunks[-1].done
    assert chunks[-1].eval_count == 20 and chunks[0].eval_count is None
    assert elapsed >= chunks[-1].eval_duration / 1e9 * 0.9  # it really took that long


def test_chat_stream_and_not(client: ollama.Client, variant: str) -> None:
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a sort."}]
    whole = client.chat(model=variant, messages=messages, options={"temperature": 0, "num_predict": 16})
    assert whole.message.role == "assistant" and whole.message.content and whole.eval_count == 16
    parts = list(client.chat(model=variant, messages=messages, options={"temperature": 0, "num_predict": 16},
                             stream=True))
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].done and parts[-1].done_reason == "length" and parts[-1].prompt_eval_count


def test_ps_and_usage_follow_the_plan(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    client.generate(model=variant, prompt="hi", options={"num_predict": 2})
    (running,) = client.ps().models
    plan = make_plan(BASE, ["rtx-4090"], 16384, kv_cache="f16", flash_attention=True, parallel=1)
    assert running.model == variant and running.context_length == 16384
    assert running.size == running.size_vram  # 100% GPU
    assert running.size_vram / (1 << 20) == pytest.approx(plan.ps_size_vram_mib, abs=1)
    usage = json.loads(sim.usage.read_text())
    assert usage["gpus"] == [{"index": 0, "used_mib": plan.per_gpu[0].used_mib}]
    assert "GPU" in sim.cli("ps").stdout.splitlines()[1] and "16384" in sim.cli("ps").stdout


def test_preload_and_unload_with_keep_alive(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    loaded = client.generate(model=variant)
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
    assert [m.model for m in client.ps().models] == [variant]
    gone = client.generate(model=variant, keep_alive=0)
    assert gone.done_reason == "unload"
    assert client.ps().models == []
    assert json.loads(sim.usage.read_text())["gpus"] == []


def test_keep_alive_expiry_unloads(client: ollama.Client, variant: str) -> None:
    client.generate(model=variant, prompt="x", options={"num_predict": 1}, keep_alive="1s")
    assert client.ps().models
    time.sleep(1.6)
    assert client.ps().models == []


def test_request_num_ctx_reloads_with_that_context(client: ollama.Client, variant: str) -> None:
    client.generate(model=variant, prompt="x", options={"num_predict": 1, "num_ctx": 4096})
    assert client.ps().models[0].context_length == 4096


def test_blobs_in_the_store_match_their_digests(sim: LocalSim, base: str) -> None:
    """Client-side check: read every manifest of the real store layout and hash every blob."""
    manifests = sorted(p for p in (sim.models / "manifests").glob("*/*/*/*") if p.is_file())
    assert manifests
    checked = 0
    for path in manifests:
        manifest = json.loads(path.read_bytes())
        for desc in [manifest["config"], *manifest["layers"]]:
            blob = sim.models / "blobs" / desc["digest"].replace(":", "-")
            data = blob.read_bytes()
            assert len(data) == desc["size"]
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
            checked += 1
    assert checked >= 5


def test_blob_upload_and_create_from_files(client: ollama.Client, sim: LocalSim, base: str, tmp_path: Path) -> None:
    manifest = json.loads((sim.models / "manifests").joinpath(*_manifest_parts(base)).read_bytes())
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes((sim.models / "blobs" / manifest["layers"][0]["digest"].replace(":", "-")).read_bytes())
    gguf.write_bytes(gguf.read_bytes() + b"\0" * 32)  # a different file: must be uploaded
    digest = client.create_blob(gguf)
    assert httpx.head(f"{sim.url}/api/blobs/{digest}").status_code == 200
    bad = httpx.post(f"{sim.url}/api/blobs/sha256:{'0' * 64}", content=b"x")
    assert bad.status_code == 400
    client.create(model="fromfile:1", files={"model.gguf": digest}, parameters={"num_ctx": 2048})
    assert client.show("fromfile:1").modelinfo["general.architecture"] == "qwen2"
    assert client.delete("fromfile:1").status == "success"


def _manifest_parts(name: str) -> list[str]:
    host_ns_model, tag = name.rsplit(":", 1)
    return [*host_ns_model.split("/"), tag]


def test_copy_and_delete(client: ollama.Client, base: str) -> None:
    assert client.copy(base, "copied:1").status == "success"
    assert "copied:1" in {m.model for m in client.list().models}
    assert client.delete("copied:1").status == "success"
    with pytest.raises(ollama.ResponseError) as info:
        client.delete("copied:1")
    assert info.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as info:
        client.show("copied:1")
    assert info.value.status_code == 404


# --- code answers (issue 5: the code check) --------------------------------------------------


def _run_task(answer: str, task: dict) -> bool:
    code = answer.split("```python\n", 1)[1].split("```", 1)[0]
    return codecheck.run_check(task["id"], code, task["tests"]).status == "passed"


@pytest.mark.parametrize("broken", [False, True])
def test_code_task_answers(client: ollama.Client, sim: LocalSim, variant: str, broken: bool) -> None:
    sim.set_faults(broken_output=broken)
    task = json.loads((TASKS / "is_palindrome.json").read_text())
    reply = client.generate(model=variant, prompt=f"Complete the function.\n\n{task['prompt']}",
                            options={"temperature": 0, "num_predict": 400})
    assert reply.done_reason == "stop"
    assert _run_task(reply.response, task) is (not broken)


# --- misbehaviour switches: each one changes what the client sees ---------------------------


def _speed(client: ollama.Client, model: str) -> float:
    r = client.generate(model=model, prompt="go", options={"num_predict": 24, "temperature": 0})
    return r.eval_count / r.eval_duration * 1e9


def test_fault_slow_generation(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    normal = _speed(client, variant)
    sim.set_faults(slow_factor=3.0)
    assert _speed(client, variant) == pytest.approx(normal / 3, rel=0.15)


def test_fault_partial_offload(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    sim.set_faults(partial_offload=0.5)
    client.generate(model=variant, prompt="x", options={"num_predict": 1})
    (running,) = client.ps().models
    assert 0 < running.size_vram < running.size
    assert "CPU/GPU" in sim.cli("ps").stdout


def test_fault_context_other_than_asked(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    sim.set_faults(context_override=2048)
    client.generate(model=variant, prompt="x", options={"num_predict": 1})
    assert client.ps().models[0].context_length == 2048


def test_fault_model_missing(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    sim.set_faults(missing_models=[variant])
    assert variant not in {m.model for m in client.list().models}
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(model=variant, prompt="x")
    assert info.value.status_code == 404 and "not found" in info.value.error


def test_an_error_that_closes_the_connection_says_so(sim: LocalSim) -> None:
    # The server drops the connection after an error (an unread body must not leak into the next
    # request); without `Connection: close` a keep-alive client would reuse the dead socket.
    conn = http.client.HTTPConnection(sim.url.removeprefix("http://"), timeout=10)
    try:
        conn.request("POST", "/api/show", body=b'{"model": "no-such-model:1b"}',
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == 404 and response.getheader("Connection") == "close"
        conn.request("GET", "/api/version")  # http.client reconnects, as it was told to
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_fault_crash_on_load_returns_500(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    sim.set_faults(crash_on_load=True)
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(model=variant, prompt="x")
    assert info.value.status_code == 500 and "llama runner process has terminated" in info.value.error
    assert client.ps().models == []


def test_fault_crash_on_load_exit_kills_the_server(prefix: Path, workdir: Path, sim: LocalSim, variant: str) -> None:
    other = LocalSim(prefix, workdir / "crash")
    other.root.mkdir(parents=True, exist_ok=True)
    other.set_gpus("rtx-4090", 1)
    other.env_extra["OLLAMA_MODELS"] = str(sim.models)  # same store, second server
    other.set_faults(crash_on_load="exit")
    other.start()
    try:
        with pytest.raises((httpx.HTTPError, ollama.ResponseError)):
            ollama.Client(host=other.url).generate(model=variant, prompt="x")
        assert other.process is not None and other.process.wait(5) == 2
    finally:
        other.stop()


def test_model_too_big_for_the_card_is_partially_offloaded(client: ollama.Client, sim: LocalSim, variant: str) -> None:
    sim.set_gpus("rtx-4070", 1)
    try:
        client.generate(model=variant, prompt="x", options={"num_predict": 1, "num_ctx": 32768})
        (running,) = client.ps().models
        plan = make_plan(BASE, ["rtx-4070"], 32768, kv_cache="f16", flash_attention=True, parallel=1)
        assert not plan.fits
        assert running.size_vram < running.size
        assert running.size_vram / (1 << 20) == pytest.approx(plan.ps_size_vram_mib, abs=1)
    finally:
        sim.set_gpus("rtx-4090", 1)


def test_server_environment_is_honoured(prefix: Path, workdir: Path, sim: LocalSim, base: str, variant: str) -> None:
    """OLLAMA_MAX_LOADED_MODELS=1 evicts, OLLAMA_NUM_PARALLEL=2 doubles the KV cache,
    OLLAMA_KEEP_ALIVE=-1 keeps models forever, OLLAMA_CONTEXT_LENGTH is the default num_ctx."""
    other = LocalSim(prefix, workdir / "env", env_extra={
        "OLLAMA_MODELS": str(sim.models), "OLLAMA_MAX_LOADED_MODELS": "1", "OLLAMA_NUM_PARALLEL": "2",
        "OLLAMA_KEEP_ALIVE": "-1", "OLLAMA_CONTEXT_LENGTH": "8192", "OLLAMA_KV_CACHE_TYPE": "q8_0"})
    other.root.mkdir(parents=True, exist_ok=True)
    other.set_gpus("rtx-4090", 1)
    other.start()
    try:
        client = ollama.Client(host=other.url, timeout=120)
        client.generate(model=variant, prompt="x", options={"num_predict": 1})
        client.generate(model=base, prompt="x", options={"num_predict": 1})
        (running,) = client.ps().models  # the first was evicted
        assert running.model == base and running.context_length == 8192
        plan = make_plan(BASE, ["rtx-4090"], 8192, kv_cache="q8_0", flash_attention=True, parallel=2)
        assert running.size_vram / (1 << 20) == pytest.approx(plan.ps_size_vram_mib, abs=1)
        assert other.cli("ps").stdout.splitlines()[1].split()[-1] == "Forever"
    finally:
        other.stop()
    assert not other.usage.exists()  # a clean stop clears what nvidia-smi reads


def test_cli_pull_prints_progress(sim: LocalSim, registry_address: str) -> None:
    pulled = sim.cli("pull", "--insecure", f"{registry_address}/library/{SMALL}")
    lines = pulled.stdout.splitlines()
    assert pulled.returncode == 0 and lines[0] == "pulling manifest" and lines[-1] == "success"
    assert sum(line.startswith("pulling ") and "100%" in line for line in lines) == 5
    failed = sim.cli("pull", "--insecure", f"{registry_address}/library/none:1")
    assert failed.returncode == 1 and failed.stderr.startswith("Error: pull model manifest")
    assert sim.cli("rm", f"{registry_address}/library/{SMALL}").returncode == 0


def test_time_scale_shrinks_sleeps_not_reported_speed(prefix: Path, workdir: Path, sim: LocalSim, variant: str) -> None:
    fast = LocalSim(prefix, workdir / "fast", env_extra={"OLLAMA_MODELS": str(sim.models),
                                                         "CODERIG_SIM_TIME_SCALE": "0.05"})
    fast.root.mkdir(parents=True, exist_ok=True)
    fast.set_gpus("rtx-4090", 1)
    fast.start()
    try:
        client = ollama.Client(host=fast.url, timeout=120)
        client.generate(model=variant)  # load
        started = time.monotonic()
        reply = client.generate(model=variant, prompt="go", options={"num_predict": 128, "temperature": 0})
        wall = time.monotonic() - started
        plan = make_plan(BASE, ["rtx-4090"], 16384, kv_cache="f16", flash_attention=True, parallel=1)
        assert reply.eval_count / reply.eval_duration * 1e9 == pytest.approx(plan.decode_tok_s, rel=0.1)
        assert wall < reply.eval_duration / 1e9 / 3
    finally:
        fast.stop()


def test_cli_cp_run_and_stop(sim: LocalSim, variant: str) -> None:
    assert sim.cli("cp", variant, "cli/copy:1").returncode == 0
    ran = sim.cli("run", "--verbose", "cli/copy:1", "Say", "hi")
    assert ran.returncode == 0 and ran.stdout.strip() and "eval rate:" in ran.stderr
    assert "cli/copy:1" in sim.cli("ps").stdout
    assert sim.cli("stop", "cli/copy:1").returncode == 0
    assert "cli/copy:1" not in sim.cli("ps").stdout
    assert sim.cli("rm", "cli/copy:1").returncode == 0
