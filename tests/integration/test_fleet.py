"""A mixed fleet in one run: `detect` and `apply --profile auto` against four sandbox hosts.

one4070 (1x RTX 4070), one4090 (1x RTX 4090), dual (2x RTX 4090) and halfdead (2x RTX
4090 whose second card is dead: on the PCI bus, not seen by the driver). detect must
report each as it is; auto must give budget-4070, midrange-4090, dual-4090, and
midrange-4090 to halfdead with the dead card named in the reason; one run, every
verdict in one report; a rerun changes nothing on any host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coderig_deploy.profiles import load_profile
from coderig_deploy.sandbox import HostSpec, Lab

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "coderig-deploy")
HOSTS = [
    HostSpec(name="one4070", gpu="rtx-4070", count=1),
    HostSpec(name="one4090", gpu="rtx-4090", count=1),
    HostSpec(name="dual", gpu="rtx-4090", count=2),
    HostSpec(name="halfdead", gpu="rtx-4090", count=2, missing=1),
]
EXPECTED = {"one4070": "budget-4070", "one4090": "midrange-4090", "dual": "dual-4090",
            "halfdead": "midrange-4090"}


def cli(lab: Lab, *args: str) -> tuple[int, Any]:
    env = {**os.environ, "CODERIG_SANDBOX_HOME": str(lab.home)}
    proc = subprocess.run([CLI, *args, "--json"], env=env, capture_output=True, text=True,
                          check=False, timeout=1800)
    assert proc.stdout.strip()[:1] in "[{", f"exit {proc.returncode}: {proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def fleet_lab(sandbox_lab: Any) -> Lab:
    lab: Lab = sandbox_lab(HOSTS, name="fleet")
    return lab


@pytest.fixture(scope="module")
def detected(fleet_lab: Lab) -> dict[str, Any]:
    code, doc = cli(fleet_lab, "detect", "--sandbox")
    assert code == 0, doc
    return {h["host"]: h for h in doc}


@pytest.fixture(scope="module")
def runs(fleet_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    runs_dir = tmp_path_factory.mktemp("fleet-runs")
    first = cli(fleet_lab, "apply", "--profile", "auto", "--sandbox", "--runs-dir", str(runs_dir))
    second = cli(fleet_lab, "apply", "--profile", "auto", "--sandbox", "--runs-dir", str(runs_dir))
    return {"first": first, "second": second}


def test_detect_reports_each_hosts_cards(detected: dict[str, Any]) -> None:
    usable = {h: [(g["slug"], g["source"]) for g in d["gpus"] if g["usable"]] for h, d in detected.items()}
    assert usable == {"one4070": [("rtx-4070", "nvidia-smi")], "one4090": [("rtx-4090", "nvidia-smi")],
                      "dual": [("rtx-4090", "nvidia-smi")] * 2, "halfdead": [("rtx-4090", "nvidia-smi")]}
    dead = [g for g in detected["halfdead"]["gpus"] if not g["usable"]]
    assert [(g["bus_id"], g["pci_device_id"], g["slug"], g["source"]) for g in dead] == \
        [("0000:02:00.0", "2684", "rtx-4090", "lspci")]
    for facts in detected.values():
        assert facts["reachable"] and facts["unknown_pci_ids"] == []
        assert facts["driver_version"] and facts["os"].startswith("Debian")
        assert facts["ram_mib"] > 0 and facts["disk_free_gib"] > 0


def test_detect_lists_fitting_profiles_best_first(detected: dict[str, Any]) -> None:
    assert {h: d["auto"]["profile"] for h, d in detected.items()} == EXPECTED
    fits = [f["profile"] for f in detected["dual"]["fits"]]
    assert fits[0] == "dual-4090" and set(fits[1:]) == {"midrange-4090", "deepseek-33b-4090"}
    assert [f["profile"] for f in detected["one4070"]["fits"]] == ["budget-4070"]
    assert "1 more on the PCI bus not seen by the driver (0000:02:00.0 rtx-4090)" \
        in detected["halfdead"]["auto"]["reason"]


def test_one_run_gives_each_host_its_profile_and_one_report(runs: dict[str, Any]) -> None:
    code, doc = runs["first"]
    assert code == 0 and doc["status"] == "successful", doc
    assert doc["profiles"] == EXPECTED
    assert {h["host"]: h["status"] for h in doc["hosts"]} == {h: "ok" for h in EXPECTED}
    report = json.loads((Path(doc["run_dir"]) / "report.json").read_text())
    rows = {h["host"]: h for h in report["hosts"]}
    assert set(rows) == set(EXPECTED) and report["verdict"] in ("pass", "warn")
    for host, profile in EXPECTED.items():
        row = rows[host]
        assert row["profile"] == profile and row["checks"][0]["name"] == "profile"
        assert row["profile_reason"].startswith("auto: ") and row["verdict"] != "fail", row["reasons"]
        assert row["expected_decode_tok_s"] == load_profile(profile).expect.decode_tok_s
        assert len(row["gpu_planned_mib"]) == load_profile(profile).hardware.count
    assert "not seen by the driver" in rows["halfdead"]["profile_reason"]
    assert "not seen by the driver" not in rows["dual"]["profile_reason"]


def test_rerun_changes_nothing_on_any_host(runs: dict[str, Any]) -> None:
    code, doc = runs["second"]
    assert code == 0, doc
    assert {h["host"]: (h["status"], h["changed"]) for h in doc["hosts"]} == {h: ("ok", 0) for h in EXPECTED}


def test_detect_after_apply_sees_ollama_and_the_model(fleet_lab: Lab, runs: dict[str, Any]) -> None:
    code, doc = cli(fleet_lab, "detect", "--sandbox")
    assert code == 0
    for facts in doc:
        profile = load_profile(EXPECTED[facts["host"]])
        assert facts["ollama_version"] == profile.ollama.version
        assert profile.model.variant_name in facts["models"], facts["models"]
        assert facts["models_dir"] == profile.ollama.models_dir
