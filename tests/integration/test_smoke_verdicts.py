"""Smoke verdicts end to end on a booted sandbox host running the Ollama simulator.

The host is provisioned the lean way, directly over SSH (release archive unpacked,
ollama user, unit + drop-in from the profile, the synthetic model in the store, the
num_ctx variant made with `ollama create`), not through `apply`: this test is about
the benchmark, verdicts, reports and verify checks, and CI has 2 cores. The
benchmark runs as the smoke role runs it: the zipapp copied to the host and run
with the host's python3. Each misbehaviour is one switch in the simulator's
faults file; the model is unloaded between scenarios so placement is redone.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.profiles import load_profile
from coderig_deploy.reports import host_report, read_run, run_report, write_run
from coderig_deploy.reports.junit import parse_junit
from coderig_deploy.reports.markdown import parse_markdown_table
from coderig_deploy.sandbox.lab import HostSpec, Lab
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.ollama_sim.store import Store
from coderig_deploy.sandbox.release import build_release
from coderig_deploy.sandbox.synthetic_models import build
from coderig_deploy.smoke import expectations, host_args, write_pyz
from coderig_deploy.verify.runner import Target, run_verify
from coderig_deploy.verify.spec import spec_for
from tests.integration.ollama_sim_support import OLLAMA_UNIT

pytestmark = pytest.mark.integration
PROFILE = "midrange-4090"
FAULTS = "/etc/coderig-sim/ollama-faults.json"


class Host:
    """One provisioned sandbox host and the commands the scenarios need."""

    def __init__(self, lab: Lab, name: str, profile: Any) -> None:
        self.lab, self.name, self.profile = lab, name, profile

    def sh(self, command: str, timeout: float = 120.0, check: bool = True) -> str:
        proc = self.lab.ssh(self.name, command, timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{command!r} on {self.name}: rc {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def put(self, data: bytes, path: str) -> None:
        client = self.lab.paramiko(self.name)
        try:
            with client.open_sftp() as sftp:
                sftp.putfo(io.BytesIO(data), path)
        finally:
            client.close()

    def faults(self, **switches: Any) -> None:
        self.sh(f"mkdir -p /etc/coderig-sim && printf %s {shlex.quote(json.dumps(switches))} > {FAULTS}")
        self.sh("systemctl start ollama && for i in $(seq 50); do "
                "python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:11434/api/version')\" "
                "2>/dev/null && break; sleep 0.2; done")
        self.unload()

    def unload(self) -> None:
        body = json.dumps({"model": self.profile.model.variant_name, "keep_alive": 0})
        self.sh("python3 -c " + shlex.quote(
            "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:11434/api/generate', "
            f"data={body.encode()!r}, headers={{'Content-Type': 'application/json'}}))"),
            check=False)  # 404 before the variant exists

    def bench(self) -> dict[str, Any]:
        args = " ".join(shlex.quote(a) for a in host_args(self.profile, runs=3, num_predict=64))
        out = self.sh(f"python3 /root/coderig-bench.pyz {args}", timeout=300, check=False)
        return json.loads(out)


def _store_tarball(profile: Any) -> bytes:
    """The model store holding the profile's model, built with the simulator's own Store."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        store.ensure()
        model = build(load_catalog().model(profile.model.tag))
        for digest, data in model.blobs.items():
            store.write_blob(digest, io.BytesIO(data), len(data))
        store.write_manifest(parse(profile.model.tag), model.manifest)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(tmp, arcname=".")
        return buf.getvalue()


def _provision(host: Host, tmp: Path) -> None:
    p = host.profile
    env = dict(p.ollama_env(), CODERIG_SIM_TIME_SCALE="0.05")  # the simulator sleeps less
    dropin = "[Service]\n" + "".join(f'Environment="{k}={v}"\n' for k, v in env.items())
    host.put(build_release(tmp).archive.read_bytes(), "/tmp/ollama.tar.zst")
    host.put(_store_tarball(p), "/tmp/store.tar")
    host.put(OLLAMA_UNIT.encode(), "/etc/systemd/system/ollama.service")
    host.sh("mkdir -p /etc/systemd/system/ollama.service.d")
    host.put(dropin.encode(), "/etc/systemd/system/ollama.service.d/override.conf")
    host.put((tmp / "coderig-bench.pyz").read_bytes(), "/root/coderig-bench.pyz")
    models = shlex.quote(p.ollama.models_dir)
    host.sh("tar -C /usr/local --zstd -xf /tmp/ollama.tar.zst && "
            "useradd --system --home-dir /usr/share/ollama --create-home --shell /bin/false ollama && "
            f"mkdir -p {models} && tar -C {models} -xf /tmp/store.tar && "
            "chown -R ollama:ollama /usr/share/ollama && chmod -R o-w /usr/share/ollama && "
            # The simulator (as ollama) publishes GPU memory use here for nvidia-smi.
            "install -d -o ollama -g ollama -m 0755 /run/coderig-sim && "
            "systemctl daemon-reload && systemctl enable --now ollama")
    host.faults()  # healthy, and waits for the API
    modelfile = f"FROM {p.model.tag}\nPARAMETER num_ctx {p.model.num_ctx}\n"
    host.put(modelfile.encode(), "/tmp/Modelfile")
    host.sh(f"ollama create {shlex.quote(p.model.variant_name)} -f /tmp/Modelfile")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Any:
    profile = load_profile(PROFILE)
    tmp = tmp_path_factory.mktemp("smoke")
    write_pyz(tmp)
    lab = Lab(home=tmp_path_factory.mktemp("lab"))
    (state,) = lab.up([HostSpec(gpu=profile.hardware.gpu, count=profile.hardware.count)],
                      prefix="smoke")
    try:
        h = Host(lab, state.name, profile)
        _provision(h, tmp)
        yield h
    finally:
        lab.down()


SCENARIOS: dict[str, tuple[dict[str, Any], str | None, str, set[str]]] = {
    # name: (fault switches, failing check, words its reason must hold, other checks
    # that fail with it as a consequence)
    "correct": ({}, None, "", set()),
    "too_slow": ({"slow_factor": 4.0}, "decode_speed", "too slow", set()),
    # A model partly in system RAM is also several times slower: both must fail.
    "partial_offload": ({"partial_offload": 0.6}, "gpu_offload", "CPU/GPU", {"decode_speed"}),
    "wrong_context": ({"context_override": 2048}, "context", "context 2048 != planned 24576", set()),
    "code_check_failing": ({"broken_output": True}, "code_check", "0/4 passed", set()),
    "service_down": ({}, "service", "cannot reach Ollama", set()),
}


@pytest.fixture(scope="module")
def outcomes(host: Host) -> dict[str, dict[str, Any]]:
    """Run every scenario once on the host; {scenario: raw hostbench result}."""
    results = {}
    for name, (switches, *_) in SCENARIOS.items():
        host.faults(**switches)
        if name == "service_down":
            host.sh("systemctl stop ollama")
        results[name] = host.bench()
    host.faults()
    return results


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_verdict(outcomes: dict[str, dict[str, Any]], host: Host, scenario: str) -> None:
    switches, failing, words, also = SCENARIOS[scenario]
    raw = outcomes[scenario]
    rep = host_report(host.name, raw, expectations(host.profile))
    # The host's own verdict (what the smoke role enforces) and the controller's agree.
    assert raw["verdict"]["status"] == rep.verdict
    if failing is None:
        assert rep.verdict == "pass", rep.reasons
        assert raw["ps"]["processor"] == "100% GPU", raw["load"]
        assert raw["load"]["already_loaded"] is False and raw["load"]["wall_s"] > 0, raw["load"]
        assert raw["code_check"] and all(c["status"] == "passed" for c in raw["code_check"])
        assert {c["isolation"] for c in raw["code_check"]} == {"netns"}
        # The host's nvidia-smi reports the driver's reserved memory apart from "used".
        assert [(g["reserved_mib"], g["usable_mib"]) for g in raw["gpu_memory"]["gpus"]] == [(615, 24564 - 615)]
        return
    assert rep.verdict == "fail"
    failed = {c.name: c.reason for c in rep.checks if c.status == "fail"}
    assert set(failed) == {failing} | also, failed
    assert words in failed[failing]


def test_reports_written_and_parsed_back(outcomes: dict[str, dict[str, Any]], host: Host,
                                         tmp_path: Path) -> None:
    exp = expectations(host.profile)
    hosts = [host_report(f"{host.name}[{name}]", raw, exp) for name, raw in outcomes.items()]
    rep = run_report(hosts, PROFILE, host.profile.model.tag)
    write_run(tmp_path, rep)
    assert read_run(tmp_path) == rep
    rows = {r["host"]: r for r in parse_markdown_table((tmp_path / "report.md").read_text())}
    assert rows[f"{host.name}[correct]"]["verdict"] == "pass"
    assert rows[f"{host.name}[partial_offload]"]["offload"].endswith("CPU/GPU")
    assert rows[f"{host.name}[wrong_context]"]["context"] == "2048 (24576)"
    cases = parse_junit((tmp_path / "junit.xml").read_text())
    failures = {(c.host, c.name) for c in cases if c.outcome == "failure"}
    assert failures == {(f"{host.name}[{n}]", check) for n, s in SCENARIOS.items()
                        for check in ({s[1]} | s[3] if s[1] else set())}


def test_verify_checks(host: Host) -> None:
    lab = host.lab
    state = lab.host(host.name)
    target = Target(host.name, state.ip, key_file=lab.key, known_hosts=lab.known_hosts)
    spec = spec_for(host.profile)
    checks = {c.name: c for c in run_verify([target], spec)[host.name]}
    assert {n: c.status for n, c in checks.items()} == {n: "pass" for n in checks}, checks
    assert len(checks) == 8
    # Break two things and see exactly those checks fail, with reasons.
    store = spec.models_dir
    host.sh(f"touch {store}/stray && chmod o+w {store}/stray && systemctl stop ollama")
    try:
        checks = {c.name: c for c in run_verify([target], spec)[host.name]}
    finally:
        host.sh(f"rm -f {store}/stray && systemctl start ollama")
    failed = {n for n, c in checks.items() if c.status == "fail"}
    assert failed == {"unit_enabled_active", "bind_address", "store_not_world_writable",
                      "store_owned_by_ollama"}
    assert "not active" in checks["unit_enabled_active"].reason
