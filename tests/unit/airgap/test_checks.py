"""The air-gap checks from probe documents: real /proc route tables (read in a sandbox host's
network namespace and on a connected machine) and the probe's own attempt records."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from coderig_deploy.airgap.checks import Expected, airgap_checks
from coderig_deploy.airgap.probe import PROBE, default_routes_v4, default_routes_v6

ROUTE4_LAB = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
              "eth0\t0043560A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
ROUTE4_CONNECTED = ROUTE4_LAB + "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
Z = "0" * 32
ROUTE6_LAB = (f"fe800000000000000000000000000000 40 {Z} 00 {Z} 00000100 00000001 00000000 00000001     eth0\n"
              f"{Z} 00 {Z} 00 {Z} ffffffff 00000001 00000000 00200200       lo\n")
ROUTE6_CONNECTED = ROUTE6_LAB + (f"{Z} 00 {Z} 00 fe800000000000000000000000000001 "
                                 "00000400 00000001 00000000 00000003 eth0\n")
DIGEST = "sha256:" + "ab" * 32
TAG = "qwen2.5-coder:14b-instruct-q4_K_M"
EXPECTED = Expected(model=TAG, digest=DIGEST)
UNREACHABLE = [{"address": "1.1.1.1", "port": 443, "route": False, "connected": False, "errno": 101,
                "error": "Network is unreachable"}]


def probe(**changes: Any) -> dict[str, Any]:
    doc = {"route4": ROUTE4_LAB, "route6": ROUTE6_LAB, "attempts": UNREACHABLE, "ollama_pid": "42",
           "ollama_environ": ["OLLAMA_HOST=127.0.0.1:11434", "OLLAMA_NO_CLOUD=1"],
           "tags": {"models": [{"name": TAG, "digest": DIGEST[7:]}]}, "tags_error": None}
    return {**doc, **changes}


def by_name(doc: dict[str, Any], expected: Expected = EXPECTED) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.reason) for c in airgap_checks(doc, expected)}


def test_default_routes_are_read_from_both_tables() -> None:
    assert default_routes_v4(ROUTE4_LAB) == [] and default_routes_v6(ROUTE6_LAB) == []
    assert default_routes_v4(ROUTE4_CONNECTED) == ["via 192.0.2.1 dev eth0"]
    assert default_routes_v6(ROUTE6_CONNECTED) == ["via fe80::1 dev eth0"]


def test_a_sealed_host_passes_every_check() -> None:
    checks = airgap_checks(probe(), EXPECTED)
    assert [(c.name, c.status) for c in checks] == [
        ("no_default_route", "pass"), ("no_public_connection", "pass"), ("ollama_no_cloud", "pass"),
        ("site_registry_only", "pass"), ("model_digest", "pass")]
    assert checks[1].reason == "1.1.1.1:443: Network is unreachable (failed on the host)"
    assert all(c.source == "validate" for c in checks)


@pytest.mark.parametrize(("changes", "check", "reason"), [
    ({"route4": ROUTE4_CONNECTED}, "no_default_route", "default route via 192.0.2.1 dev eth0: remove it"),
    ({"route6": ROUTE6_CONNECTED}, "no_default_route", "default route via fe80::1 dev eth0: remove it"),
    ({"attempts": [{"address": "1.1.1.1", "port": 443, "route": True, "source": "10.86.67.2"}]},
     "no_public_connection", "the host has a route to 1.1.1.1 (from 10.86.67.2): nothing was sent"),
    ({"attempts": [{"address": "1.1.1.1", "port": 443, "route": False, "connected": False, "errno": 110,
                    "error": "timed out"}]}, "no_public_connection", "1.1.1.1: timed out"),
    ({"attempts": []}, "no_public_connection", "no attempt"),
    ({"ollama_environ": ["OLLAMA_HOST=127.0.0.1:11434"]}, "ollama_no_cloud", "OLLAMA_NO_CLOUD=(unset)"),
    ({"ollama_environ": ["OLLAMA_NO_CLOUD=0"]}, "ollama_no_cloud", "OLLAMA_NO_CLOUD=0: set it"),
    ({"ollama_environ": None}, "ollama_no_cloud", "neither the ollama service nor an ollama container is running"),
    ({"ollama_environ": ["OLLAMA_HOST=0.0.0.0:11434"], "ollama_runtime": "container"}, "ollama_no_cloud",
     "Ollama runs in its container with OLLAMA_NO_CLOUD=(unset)"),
    ({"ollama_environ": ["OLLAMA_NO_CLOUD=1", "HTTPS_PROXY=http://proxy:3128"]}, "site_registry_only",
     "a proxy gives Ollama a way out (HTTPS_PROXY=http://proxy:3128)"),
    ({"tags": {"models": [{"name": TAG, "digest": DIGEST[7:]},
                          {"name": "ghcr.io/x/y:1", "digest": "00"}]}}, "site_registry_only",
     "models from registries other than the site's: ghcr.io"),
    ({"tags": {"models": [{"name": TAG, "digest": "cd" * 32}]}}, "model_digest",
     f"{TAG} has manifest digest sha256:{'cd' * 32}, the bundle's is {DIGEST}"),
    ({"tags": {"models": []}}, "model_digest", f"{TAG} is not on the host"),
    ({"tags": None, "tags_error": "Connection refused"}, "model_digest", "did not answer: Connection refused"),
])
def test_each_broken_promise_fails_its_check(changes: dict[str, Any], check: str, reason: str) -> None:
    status, text = by_name(probe(**changes))[check]
    assert status == "fail" and reason in text, text


def test_the_site_registry_is_allowed() -> None:
    site = Expected(model=TAG, digest=DIGEST, registries=("10.0.0.5:5000",))
    doc = probe(tags={"models": [{"name": TAG, "digest": DIGEST[7:]},
                                 {"name": "10.0.0.5:5000/library/qwen2.5-coder:1", "digest": "00"}]})
    assert by_name(doc, site)["site_registry_only"] == ("pass", "no proxy; registries: 10.0.0.5:5000")
    assert by_name(doc)["site_registry_only"][0] == "fail"


def test_the_probe_program_runs_and_sends_nothing_where_there_is_no_route() -> None:
    """The host-side program itself, here: a TEST-NET address and a dead API; its shape is the parsers' input."""
    out = subprocess.run([sys.executable, "-c", PROBE, "http://127.0.0.1:9", "1", json.dumps([["192.0.2.1", 9]])],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    doc = json.loads(out)
    assert set(doc) == {"route4", "route6", "attempts", "ollama_pid", "ollama_runtime", "ollama_environ", "tags",
                        "tags_error"}
    attempt = doc["attempts"][0]
    assert attempt["address"] == "192.0.2.1" and isinstance(attempt["route"], bool)
    if attempt["route"]:  # this machine has a route: the program must not have tried to connect
        assert "connected" not in attempt and attempt["source"]
    assert doc["tags"] is None and doc["tags_error"]
