"""The official `ollama` client drives the simulator on a booted sandbox host, through
an SSH tunnel (OpenSSH -L, host key checked): the simulator installed from the lab's
artifact server as a release archive (download, sha256sum -c, unpack), run by a
systemd unit as user `ollama`, pulling from the lab's docker-registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import ollama
import pytest

from coderig_deploy.planner import make_plan
from coderig_deploy.sandbox import HostSpec, Lab, services
from coderig_deploy.sandbox.ssh import ssh_argv
from tests.integration.ollama_sim_support import OLLAMA_UNIT, free_port

pytestmark = pytest.mark.integration

TAG = "qwen2.5-coder:14b-instruct-q4_K_M"  # a shipped profile's tag: seeded by `sandbox up`
HOST = "sim1"



def ok(lab: Lab, command: str, stdin: str | None = None) -> str:
    proc = lab.ssh(HOST, command, timeout=120, stdin=stdin)
    assert proc.returncode == 0, f"{command}: {proc.stderr or proc.stdout}"
    return proc.stdout


def install(lab: Lab) -> None:
    """What the ollama role does, by hand: download, verify, unpack, user, unit, drop-in."""
    base = services.urls(lab)["ollama_download_base"] + "/v0.33.3"
    ok(lab, f"set -e; cd /tmp; curl -fsS -O {base}/ollama-linux-amd64.tar.zst -O {base}/sha256sum.txt; "
            "sha256sum -c sha256sum.txt; rm -rf /usr/local/lib/ollama; "
            "tar --zstd -xf ollama-linux-amd64.tar.zst -C /usr/local; "
            "id ollama >/dev/null 2>&1 || useradd -r -s /bin/false -U -m -d /usr/share/ollama ollama; "
            "install -d -m 1777 /run/coderig-sim")
    ok(lab, "cat > /etc/systemd/system/ollama.service", stdin=OLLAMA_UNIT)
    ok(lab, "mkdir -p /etc/systemd/system/ollama.service.d && "
            "cat > /etc/systemd/system/ollama.service.d/override.conf",
       stdin='[Service]\nEnvironment="OLLAMA_KEEP_ALIVE=5m"\nEnvironment="OLLAMA_CONTEXT_LENGTH=8192"\n')
    ok(lab, "systemctl daemon-reload && systemctl enable --now ollama && "
            "for i in $(seq 50); do curl -fs 127.0.0.1:11434/api/version && exit 0; sleep 0.1; done; exit 1")


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    lab = sandbox_lab([HostSpec(name=HOST, gpu="rtx-4090", count=1)], name="ollamasim")
    install(lab)
    return lab


@pytest.fixture(scope="module")
def client(lab: Lab) -> Iterator[ollama.Client]:
    port = free_port()
    host = lab.host(HOST)
    argv = ssh_argv(host.ip, lab.key, lab.known_hosts)
    tunnel = subprocess.Popen([*argv[:-1], "-N", "-o", "ExitOnForwardFailure=yes",
                               "-L", f"127.0.0.1:{port}:127.0.0.1:11434", argv[-1]])
    client = ollama.Client(host=f"http://127.0.0.1:{port}", timeout=120)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.list()
            break
        except Exception:  # noqa: BLE001 - the tunnel is not up yet
            if time.monotonic() > deadline or tunnel.poll() is not None:
                tunnel.kill()
                raise
            time.sleep(0.1)
    yield client
    tunnel.terminate()
    tunnel.wait(5)


def faults(lab: Lab, **switches: object) -> None:
    ok(lab, "cat > /etc/coderig-sim/ollama-faults.json", stdin=json.dumps(switches))


@pytest.fixture(scope="module")
def model(lab: Lab, client: ollama.Client) -> str:
    name = f"{services.urls(lab)['model_registry']}/library/{TAG}"
    events = list(client.pull(name, insecure=True, stream=True))
    assert events[0].status == "pulling manifest" and events[-1].status == "success"
    assert any(e.digest and e.completed == e.total for e in events)
    return name


def test_installed_release_reports_its_version(lab: Lab, client: ollama.Client) -> None:
    assert ok(lab, "ollama --version").strip() == "ollama version is 0.33.3"
    assert ok(lab, "systemctl is-active ollama").strip() == "active"
    assert ok(lab, "ps -o user= -C ollama | sort -u").split() == ["ollama"]


def test_client_pull_list_show_create(lab: Lab, client: ollama.Client, model: str) -> None:
    assert model in {m.model for m in client.list().models}
    assert client.show(model).modelinfo["qwen2.block_count"] == 48
    client.create(model="coderig/qwen2.5-coder-14b:16k", from_=model, parameters={"num_ctx": 16384})
    assert "16384" in client.show("coderig/qwen2.5-coder-14b:16k").parameters
    store = "/usr/share/ollama/.ollama/models"
    assert ok(lab, f"stat -c %U {store}/manifests/registry.ollama.ai/coderig/qwen2.5-coder-14b/16k").strip() == "ollama"


def test_generate_chat_ps_and_nvidia_smi(lab: Lab, client: ollama.Client, model: str) -> None:
    variant = "coderig/qwen2.5-coder-14b:16k"
    faults(lab)
    reply = client.generate(model=variant, prompt="hello", options={"num_predict": 32, "temperature": 0})
    assert reply.eval_count == 32 and reply.eval_duration and reply.prompt_eval_count
    streamed = list(client.chat(model=variant, messages=[{"role": "user", "content": "hi"}],
                                options={"num_predict": 8}, stream=True))
    assert streamed[-1].done and len(streamed) == 9
    (running,) = client.ps().models
    plan = make_plan(TAG, ["rtx-4090"], 16384)
    assert running.context_length == 16384 and running.size == running.size_vram
    used = int(ok(lab, "nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits").strip())
    idle = json.loads(ok(lab, "cat /etc/coderig-sim/gpus.json"))["gpus"][0].get("idle_used_mib", 0)
    assert used == plan.per_gpu[0].used_mib + idle
    assert reply.eval_count / reply.eval_duration * 1e9 == pytest.approx(plan.decode_tok_s, rel=0.1)


def test_default_context_comes_from_the_drop_in(client: ollama.Client, model: str) -> None:
    client.generate(model=model, prompt="x", options={"num_predict": 1})
    assert {m.model: m.context_length for m in client.ps().models}[model] == 8192
    client.generate(model=model, keep_alive=0)


def test_blobs_read_back_match_their_digests(lab: Lab, model: str) -> None:
    store = "/usr/share/ollama/.ollama/models"
    sftp = lab.paramiko(HOST).open_sftp()
    checked = 0
    for path in ok(lab, f"find {store}/manifests -type f").split():
        manifest = json.loads(sftp.open(path).read())
        for desc in [manifest["config"], *manifest["layers"]]:
            data = sftp.open(f"{store}/blobs/{desc['digest'].replace(':', '-')}").read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"] and len(data) == desc["size"]
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("switch,check", [
    ({"slow_factor": 4.0}, "slow"),
    ({"partial_offload": 0.5}, "offload"),
    ({"context_override": 2048}, "context"),
    ({"missing_models": ["coderig/qwen2.5-coder-14b:16k"]}, "missing"),
    ({"crash_on_load": True}, "crash"),
])
def test_each_fault_changes_what_the_client_sees(lab: Lab, client: ollama.Client, model: str,
                                                 switch: dict[str, object], check: str) -> None:
    variant = "coderig/qwen2.5-coder-14b:16k"
    client.generate(model=variant, keep_alive=0)
    faults(lab, **switch)
    try:
        if check in ("missing", "crash"):
            with pytest.raises(ollama.ResponseError) as info:
                client.generate(model=variant, prompt="x")
            assert info.value.status_code == (404 if check == "missing" else 500)
            return
        reply = client.generate(model=variant, prompt="x", options={"num_predict": 16, "temperature": 0})
        (running,) = client.ps().models
        plan = make_plan(TAG, ["rtx-4090"], 16384)
        if check == "slow":
            assert reply.eval_count / reply.eval_duration * 1e9 == pytest.approx(plan.decode_tok_s / 4, rel=0.15)
        elif check == "offload":
            assert 0 < running.size_vram < running.size
        else:
            assert running.context_length == 2048
    finally:
        faults(lab)
        client.generate(model=variant, keep_alive=0)


def test_delete(client: ollama.Client) -> None:
    assert client.delete("coderig/qwen2.5-coder-14b:16k").status == "success"
    assert "coderig/qwen2.5-coder-14b:16k" not in {m.model for m in client.list().models}
