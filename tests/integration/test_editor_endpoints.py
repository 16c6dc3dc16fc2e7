"""The endpoints coding tools use, driven by the real `openai` and `ollama` Python clients.

First against the simulator started here from its release archive (no hosts), then
(marked integration) on a sandbox host provisioned with `apply` and the two-model
profile, through the SSH tunnel `editor-config` prints (host key checked).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ollama
import openai
import pytest
import yaml

from coderig_deploy.bench.editor import NO_FIM, EditorModel, measure
from coderig_deploy.bench.ollama_api import OllamaClient
from coderig_deploy.sandbox import HostSpec, Lab, services
from tests.integration.ollama_sim_support import LocalSim, free_port, start_registry, stop_pid, unpack_release

FIM_MODEL, CHAT_ONLY = "starcoder2:3b", "llama3.1:8b"
CLI = str(Path(sys.executable).parent / "coderig-deploy")
PROFILE = "editor-qwen7b-starcoder2"
CHAT_VARIANT, FIM_VARIANT = "coderig/qwen2.5-coder-7b:16k", "coderig/starcoder2-3b:4k"
PREFIX = "def is_palindrome(text: str) -> bool:\n    \"\"\"Same backwards, ignoring case and non-alphanumerics.\"\"\"\n"
SUFFIX = "\n\nprint(is_palindrome(\"abba\"))\n"


# --- against the simulator on this machine ---------------------------------------------------


@pytest.fixture(scope="module")
def local() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="editor-sim-") as tmp:
        work = Path(tmp)
        reg = start_registry(work, [FIM_MODEL, CHAT_ONLY])
        sim = LocalSim(unpack_release(work), work / "host", env_extra={"CODERIG_SIM_TIME_SCALE": "0.05"})
        sim.root.mkdir(parents=True)
        sim.set_gpus("rtx-4090", 1)
        sim.start()
        try:
            names = {}
            for tag in (FIM_MODEL, CHAT_ONLY):
                names[tag] = f"{reg.address}/library/{tag}"
                assert list(ollama.Client(host=sim.url).pull(names[tag], insecure=True, stream=True))[-1].status == "success"
            yield {"url": sim.url, "fim": names[FIM_MODEL], "chat": names[CHAT_ONLY]}
        finally:
            sim.stop()
            stop_pid(reg.pid)


def test_openai_client_lists_models_and_chats(local: dict[str, str]) -> None:
    client = openai.OpenAI(base_url=local["url"] + "/v1", api_key="ollama")
    assert {m.id for m in client.models.list()} == {local["fim"], local["chat"]}
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a sort algorithm."}]
    reply = client.chat.completions.create(model=local["chat"], messages=messages, max_tokens=12, temperature=0)
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 12 and reply.choices[0].message.content
    chunks = list(client.chat.completions.create(model=local["chat"], messages=messages, max_tokens=12,
                                                 temperature=0, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content  # temperature 0: the same answer streamed
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    with pytest.raises(openai.NotFoundError, match="not found, try pulling it first"):
        client.chat.completions.create(model="nothere:1b", messages=messages)


def test_ollama_client_fills_in_the_middle_and_refuses_a_chat_only_model(local: dict[str, str]) -> None:
    client = ollama.Client(host=local["url"])
    assert "insert" in (client.show(local["fim"]).capabilities or [])
    assert "insert" not in (client.show(local["chat"]).capabilities or [])
    middle = client.generate(model=local["fim"], prompt=PREFIX, suffix=SUFFIX, raw=True,
                             options={"temperature": 0}).response
    namespace: dict[str, Any] = {}
    exec(compile(PREFIX + middle, "<fim>", "exec"), namespace)  # noqa: S102 - the simulator's own reference code
    assert namespace["is_palindrome"]("No 'x' in Nixon") is True
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(model=local["chat"], prompt=PREFIX, suffix=SUFFIX, raw=True)
    assert info.value.status_code == 400
    # Ollama names the model in full (host/namespace/model:tag); here the host is the local registry.
    assert info.value.error == f"{local['chat']} does not support insert"


def test_benchmark_editor_checks_pass_fim_and_name_the_chat_only_model(local: dict[str, str]) -> None:
    rows = measure(OllamaClient(local["url"]), [EditorModel(local["fim"], "autocomplete"),
                                                EditorModel(local["chat"], "chat"),
                                                EditorModel(local["chat"], "autocomplete")])
    by_kind = [(r["kind"], r["model"], r["ok"]) for r in rows]
    assert by_kind[:4] == [("fim", local["fim"], True), ("chat", local["chat"], True),
                           ("openai_chat", local["chat"], True), ("fim", local["chat"], False)]
    assert rows[0]["ttft_s"] is not None and "is_palindrome passes its tests" in rows[0]["detail"]
    assert rows[3]["detail"].startswith(NO_FIM) and "does not support insert" in rows[3]["detail"]
    assert [r["kind"] for r in rows[4:]] == ["openai_models", "resident"] and all(r["ok"] for r in rows[4:])


# --- on a provisioned sandbox host, through the SSH tunnel ---------------------------------------


def _wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the tunnel exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the tunnel did not open port {port}")


@pytest.fixture(scope="module")
def provisioned(sandbox_lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    lab: Lab = sandbox_lab([HostSpec(name="ed1", gpu="rtx-4060-ti-16gb", count=1)], name="editor")
    runs = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, "apply", "--json", "--runs-dir", str(runs), "--profile", PROFILE, "--sandbox"],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    assert proc.stdout.strip().startswith("{"), f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    doc = json.loads(proc.stdout)
    host = lab.host("ed1")
    port = free_port()
    cfg = subprocess.run([CLI, "editor-config", "--json", "--profile", PROFILE, f"root@{host.ip}",
                          "--local-port", str(port), "--key", str(lab.key), "--known-hosts", str(lab.known_hosts)],
                         capture_output=True, text=True, check=True, timeout=60)
    config = json.loads(cfg.stdout)
    tunnel = subprocess.Popen(shlex.split(config["tunnel"]), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        _wait_port(port, tunnel)
        yield {"lab": lab, "apply": doc, "code": proc.returncode, "config": config, "url": config["api_base"],
               "run_dir": Path(doc["run_dir"]), "registry": services.urls(lab)["model_registry"]}
    finally:
        tunnel.terminate()
        tunnel.wait(10)


def _checks(provisioned: dict[str, Any]) -> dict[str, dict[str, Any]]:
    report = json.loads((provisioned["run_dir"] / "report.json").read_text())
    return {c["name"]: c for c in report["hosts"][0]["checks"]}


@pytest.mark.integration
def test_apply_passes_the_editor_checks_of_both_models(provisioned: dict[str, Any]) -> None:
    assert provisioned["code"] == 0, provisioned["apply"]
    checks = _checks(provisioned)
    for name in ("editor_chat", "editor_openai_chat", "editor_fim", "editor_openai_models", "editor_resident"):
        assert checks[name]["status"] in ("pass", "warn"), checks[name]  # warn: only a slow first token
    assert checks["editor_openai_models"]["status"] == "pass" and checks["editor_resident"]["status"] == "pass"
    assert FIM_VARIANT in checks["editor_fim"]["reason"] and "the middle fits" in checks["editor_fim"]["reason"]
    assert checks["editor_fim"]["expected"] == "<= 200 ms" and checks["editor_fim"]["measured"] > 0
    assert checks["editor_chat"]["expected"] == "<= 1000 ms"


@pytest.mark.integration
def test_report_links_the_editor_configuration_in_the_run_directory(provisioned: dict[str, Any]) -> None:
    run_dir = provisioned["run_dir"]
    assert "[editor/README.md](editor/README.md)" in (run_dir / "report.md").read_text()
    cont = yaml.safe_load((run_dir / "editor" / "ed1" / "continue" / "config.yaml").read_text())
    assert [(m["model"], m["roles"], m["defaultCompletionOptions"]["contextLength"]) for m in cont["models"]] == \
        [(CHAT_VARIANT, ["chat", "edit", "apply"], 16384), (FIM_VARIANT, ["autocomplete"], 4096)]
    zed = json.loads((run_dir / "editor" / "ed1" / "zed" / "settings.json").read_text())
    assert zed["agent"]["default_model"]["model"] == CHAT_VARIANT


@pytest.mark.integration
def test_openai_client_through_the_tunnel(provisioned: dict[str, Any]) -> None:
    client = openai.OpenAI(base_url=provisioned["url"] + "/v1", api_key="ollama")
    ids = {m.id for m in client.models.list()}
    assert {CHAT_VARIANT, FIM_VARIANT} <= ids
    stream = client.chat.completions.create(
        model=CHAT_VARIANT, stream=True, max_tokens=16, temperature=0,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a list?"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.integration
def test_ollama_client_through_the_tunnel_both_resident_and_fim(provisioned: dict[str, Any]) -> None:
    client = ollama.Client(host=provisioned["url"], timeout=120)
    middle = client.generate(model=FIM_VARIANT, prompt=PREFIX, suffix=SUFFIX, raw=True,
                             options={"temperature": 0}).response
    assert "return" in middle and compile(PREFIX + middle + SUFFIX, "<fim>", "exec")
    reply = client.chat(model=CHAT_VARIANT, messages=[{"role": "system", "content": "Be brief."},
                                                      {"role": "user", "content": "hi"}], options={"num_predict": 8})
    assert reply.message.content
    loaded = {m.model: m for m in client.ps().models}
    assert {CHAT_VARIANT, FIM_VARIANT} <= set(loaded), loaded  # both stay loaded (max_loaded_models 2)
    assert loaded[CHAT_VARIANT].context_length == 16384 and loaded[FIM_VARIANT].context_length == 4096
    assert all(m.size_vram == m.size for m in loaded.values())


@pytest.mark.integration
def test_a_chat_only_model_is_reported_as_without_fim(provisioned: dict[str, Any]) -> None:
    client = ollama.Client(host=provisioned["url"], timeout=300)
    chat_only = f"{provisioned['registry']}/library/llama3.1:70b-instruct-q4_K_M"
    assert list(client.pull(chat_only, insecure=True, stream=True))[-1].status == "success"
    rows = measure(OllamaClient(provisioned["url"]), [EditorModel(chat_only, "autocomplete")])
    assert rows[0]["kind"] == "fim" and not rows[0]["ok"]
    assert rows[0]["detail"].startswith(NO_FIM) and "llama3.1:70b-instruct-q4_K_M does not support insert" in rows[0]["detail"]
    client.delete(chat_only)


@pytest.mark.integration
def test_verify_runs_the_editor_checks_on_the_host(provisioned: dict[str, Any]) -> None:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(provisioned["lab"].home)}
    proc = subprocess.run([CLI, "verify", "--json", "--profile", PROFILE, "--sandbox"], env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    doc = json.loads(proc.stdout)
    checks = {c["name"]: c for c in doc["hosts"][0]["checks"]}
    assert checks["model_present"]["status"] == "pass"
    assert checks["editor_fim"]["status"] in ("pass", "warn") and checks["editor_resident"]["status"] == "pass"
    assert checks["editor_openai_chat"]["status"] in ("pass", "warn"), checks
