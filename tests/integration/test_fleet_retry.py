"""Failure isolation and `apply --retry-failed` on a 3-host budget-4070 sandbox lab.

- ws3 drops off the network (its veth is taken down on the controller side) once the
  run has reached it: ws3 ends unreachable, ws1 and ws2 pass, and the fleet report
  says so (2 pass, 1 unreachable).
- With ws3 back, `--retry-failed RUN_DIR` runs ws3 alone: the retry's inventory and
  every one of its events name ws3 only, and ws3 passes.
- A rerun of the whole lab then changes nothing on any host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.sandbox import HostSpec, Lab

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")
PROFILE = "budget-4070"
HOSTS = ("ws1", "ws2", "ws3")
DROPPED = "ws3"


@pytest.fixture(scope="module")
def lab(sandbox_lab: Any) -> Lab:
    return sandbox_lab([HostSpec(name=n, gpu="rtx-4070", count=1) for n in HOSTS], name="retry")


def _env(lab: Lab) -> dict[str, str]:
    return {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}


def _cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=_env(lab), capture_output=True, text=True, timeout=1500, check=False)


def _event_hosts(run_dir: Path) -> list[tuple[str, str]]:
    """(host, role) of every stored runner event that names a host."""
    found = []
    for path in (run_dir / "artifacts" / "apply" / "job_events").glob("*.json"):
        if path.name.endswith("-partial.json"):  # runner's scratch file, replaced while we read
            continue
        try:
            data = json.loads(path.read_text()).get("event_data") or {}
        except (FileNotFoundError, json.JSONDecodeError):  # being written by a running apply
            continue
        if data.get("host"):
            found.append((str(data["host"]), str(data.get("role") or "")))
    return found


def _link(lab: Lab, host: str, state: str) -> None:
    subprocess.run(["ip", "link", "set", lab.host(host).veth, state], check=True, timeout=30)


def _apply_dropping_a_host(lab: Lab, runs: Path) -> tuple[int, dict[str, Any], Path]:
    """Start an apply of the lab; once DROPPED has started its driver role, cut its link."""
    proc = subprocess.Popen([CLI, "apply", "--profile", PROFILE, "--sandbox", "--json", "--runs-dir", str(runs)],
                            env=_env(lab), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dropped = False
    try:
        deadline = time.monotonic() + 1200
        while proc.poll() is None and time.monotonic() < deadline and not dropped:
            run_dirs = list(runs.iterdir()) if runs.is_dir() else []
            if run_dirs and any(h == DROPPED and role in ("nvidia_driver", "ollama")
                                for h, role in _event_hosts(run_dirs[0])):
                _link(lab, DROPPED, "down")
                dropped = True
            time.sleep(0.5)
        stdout, stderr = proc.communicate(timeout=1200)
    finally:
        _link(lab, DROPPED, "up")
        if proc.poll() is None:  # the test itself failed: do not leave the apply running
            proc.kill()
            proc.wait()
    assert dropped, f"the run ended before {DROPPED} started its driver role: {stderr[-2000:]}"
    assert stdout.strip().startswith("{"), stderr
    doc = json.loads(stdout)
    return proc.returncode, doc, Path(doc["run_dir"])


@pytest.fixture(scope="module")
def runs(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("fleet-retry")
    first = _apply_dropping_a_host(lab, base / "first")
    retried = _cli(lab, "apply", "--retry-failed", str(first[2]), "--json", "--runs-dir", str(base / "retry"))
    rerun = _cli(lab, "apply", "--profile", PROFILE, "--sandbox", "--json", "--runs-dir", str(base / "rerun"))
    return {"first": first, "retry": retried, "rerun": rerun}


def _status(doc: dict[str, Any]) -> dict[str, str]:
    return {h["host"]: h["status"] for h in doc["hosts"]}


def test_the_unreachable_host_fails_alone(runs: dict[str, Any]) -> None:
    code, doc, run_dir = runs["first"]
    assert code == 1
    assert _status(doc) == {"ws1": "ok", "ws2": "ok", "ws3": "unreachable"}, doc["hosts"]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["aggregate"]["counts"] == {"pass": 2, "warn": 0, "fail": 0, "unreachable": 1}
    assert report["aggregate"]["by_reason"] == [{"outcome": "unreachable", "reason": "unreachable",
                                                 "hosts": ["ws3"]}]
    rows = {h["host"]: h for h in report["hosts"]}
    assert rows["ws1"]["decode_tok_s"] and rows["ws1"]["profile"] == PROFILE
    assert rows["ws3"]["failure"] and "ssh" in rows["ws3"]["failure"].lower(), rows["ws3"]["failure"]
    markdown = (run_dir / "report.md").read_text()
    assert "**3 hosts:** 2 pass, 0 warn, 0 fail, 1 unreachable" in markdown


def test_retry_runs_only_the_failed_host_and_fixes_it(runs: dict[str, Any]) -> None:
    proc = runs["retry"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert _status(doc) == {"ws3": "ok"}
    assert doc["retry_of"] == str(runs["first"][2])
    run_dir = Path(doc["run_dir"])
    assert {h for h, _ in _event_hosts(run_dir)} == {DROPPED}
    inventory = (run_dir / "inventory" / "hosts.yml").read_text()
    assert "ws3" in inventory and "ws1" not in inventory and "ws2" not in inventory
    assert "retrying ws3 (unreachable)" in proc.stderr


def test_a_rerun_changes_nothing_on_any_host(runs: dict[str, Any]) -> None:
    proc = runs["rerun"]
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0, doc["hosts"]
    assert {h["host"]: (h["status"], h["changed"]) for h in doc["hosts"]} == {n: ("ok", 0) for n in HOSTS}


def test_retrying_a_run_where_every_host_passed_is_nothing_to_retry(lab: Lab, runs: dict[str, Any]) -> None:
    rerun_dir = json.loads(runs["rerun"].stdout)["run_dir"]
    proc = _cli(lab, "apply", "--retry-failed", rerun_dir)
    assert proc.returncode == 0 and "nothing to retry" in proc.stderr, proc.stderr


def test_compare_shows_the_retried_host_and_hosts_only_in_one_run(lab: Lab, runs: dict[str, Any]) -> None:
    first = str(runs["first"][2])
    retry = json.loads(runs["retry"].stdout)["run_dir"]
    proc = _cli(lab, "report", "--compare", first, retry, "--json")
    assert proc.returncode == 0, proc.stderr
    drift = json.loads(proc.stdout)
    assert drift["only_in_a"] == ["ws1", "ws2"] and drift["only_in_b"] == []
    assert [h["host"] for h in drift["hosts"]] == ["ws3"]
