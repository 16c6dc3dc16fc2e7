"""Integrity pins: plain-HTTP sources need a pin (or an explicit, reported --allow-unpinned)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coderig_deploy import pins
from coderig_deploy.bench.verdict import Expectations
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import RenderOptions, TargetHost, spec_for
from coderig_deploy.reports import host_report

HTTP_ARCHIVE = "http://192.0.2.1:8088/v0.33.0/ollama-linux-amd64.tar.zst"
PIN = "sha256:" + "ab" * 32
DIGEST = "sha256:" + "cd" * 32
HOSTS = [TargetHost(name="ws1", address="192.0.2.10", user="root")]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that the one-line message is not wrapped by the console.
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "COLUMNS": "400"})


def render(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("render", "--profile", "budget-4070", "ws1", "-o", str(tmp_path / "rig"), *args)


def group_vars(tmp_path: Path) -> str:
    return (tmp_path / "rig" / "group_vars" / "all.yml").read_text()


# --- the command line ---------------------------------------------------------------


def test_plain_http_archive_without_a_pin_is_refused_in_one_line(tmp_path: Path) -> None:
    r = render(tmp_path, "--ollama-url", HTTP_ARCHIVE)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0] == (f"error: {HTTP_ARCHIVE}: plain-HTTP Ollama archive has no pin, give --ollama-sha256 "
                        "sha256:<hex> (or --allow-unpinned)")
    assert not (tmp_path / "rig").exists()


def test_a_malformed_url_is_named_by_the_option_given(tmp_path: Path) -> None:
    url = 'https://x/a"b/ollama-linux-amd64.tar.zst'
    r = render(tmp_path, "--ollama-url", url)
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: --ollama-url: {url!r} is not a valid http(s) URL"


def test_plain_http_registry_without_a_digest_is_refused(tmp_path: Path) -> None:
    r = render(tmp_path, "--model-registry", "192.0.2.1:5000")
    assert r.returncode == 2
    assert "http://192.0.2.1:5000: plain-HTTP model manifest has no pin, give --model-digest sha256:<hex>" in r.stderr


def test_the_pins_given_reach_the_rendered_variables(tmp_path: Path) -> None:
    r = render(tmp_path, "--ollama-url", HTTP_ARCHIVE, "--ollama-sha256", PIN,
               "--model-registry", "192.0.2.1:5000", "--model-digest", DIGEST)
    assert r.returncode == 0, r.stderr
    text = group_vars(tmp_path)
    assert f'ollama_archive_checksum: "{PIN}"' in text
    assert f'models_manifest_digest: "{DIGEST}"' in text
    assert "sha256sum.txt" not in text  # the same server's checksum file is not a pin
    assert "ollama_allow_unpinned: false" in text and "models_allow_unpinned: false" in text


@pytest.mark.parametrize("value", ["abc", "sha256:" + "AB" * 32, "sha256:" + "ab" * 31, "md5:" + "ab" * 16,
                                   "sha256:http://192.0.2.1/sha256sum.txt"])
def test_a_malformed_pin_is_bad_input(tmp_path: Path, value: str) -> None:
    r = render(tmp_path, "--ollama-url", HTTP_ARCHIVE, "--ollama-sha256", value)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--ollama-sha256" in r.stderr and "sha256:<64 lowercase hex digits>" in r.stderr


def test_allow_unpinned_renders_and_says_what_is_unpinned(tmp_path: Path) -> None:
    r = render(tmp_path, "--ollama-url", HTTP_ARCHIVE, "--model-registry", "192.0.2.1:5000", "--allow-unpinned")
    assert r.returncode == 0, r.stderr
    text = group_vars(tmp_path)
    assert 'ollama_archive_checksum: "sha256:http://192.0.2.1:8088/v0.33.0/sha256sum.txt"' in text
    assert "ollama_allow_unpinned: true" in text and "models_allow_unpinned: true" in text


def test_https_archive_without_a_pin_keeps_the_publishers_checksum(tmp_path: Path) -> None:
    url = "https://mirror.example.org/ollama/v0.33.0/ollama-linux-amd64.tar.zst"
    r = render(tmp_path, "--ollama-url", url)
    assert r.returncode == 0, r.stderr
    assert 'ollama_archive_checksum: "sha256:https://mirror.example.org/ollama/v0.33.0/sha256sum.txt"' in \
        group_vars(tmp_path)


# --- the decision, and the report's warning ---------------------------------------------------


def test_allow_unpinned_puts_an_integrity_warning_into_the_report() -> None:
    spec = spec_for(load_profile("budget-4070"), HOSTS,
                    RenderOptions(ollama_archive_url=HTTP_ARCHIVE, model_registry="192.0.2.1:5000",
                                  allow_unpinned=True))
    assert spec.unpinned == [
        f"Ollama archive from {HTTP_ARCHIVE} is not pinned (give --ollama-sha256 sha256:<hex> or "
        "ollama.archive_sha256)",
        "model manifest from http://192.0.2.1:5000 is not pinned (give --model-digest sha256:<hex> or "
        "model.manifest_digest)"]
    checks = pins.unpinned_checks(spec.unpinned)
    report = host_report("ws1", None, Expectations(decode_tok_s=30, tolerance_tok_s=5, num_ctx=16384),
                         leading=checks)
    assert report.verdict == "warn"
    assert report.reasons[0].startswith("integrity: accepted without a pin (--allow-unpinned): Ollama archive")


def test_any_url_the_options_accept_can_be_named_in_a_warning() -> None:
    url = "http://[fd00::1]:8088/~mirror/ollama+v0.33.0/ollama-linux-amd64.tar.zst"
    spec = spec_for(load_profile("budget-4070"), HOSTS, RenderOptions(ollama_archive_url=url, allow_unpinned=True))
    assert spec.unpinned[0].startswith(f"Ollama archive from {url} is not pinned")


def test_pinned_sources_carry_no_warning() -> None:
    spec = spec_for(load_profile("budget-4070"), HOSTS,
                    RenderOptions(ollama_archive_url=HTTP_ARCHIVE, ollama_archive_checksum=PIN,
                                  model_registry="192.0.2.1:5000", model_manifest_digest=DIGEST))
    assert spec.unpinned == [] and pins.unpinned_checks(spec.unpinned) == []
    assert spec.ollama_archive_checksum == PIN and spec.model_manifest_digest == DIGEST


def test_a_checksum_file_on_a_plain_http_server_is_not_a_pin() -> None:
    checksum, unpinned = pins.archive_checksum(
        "https://mirror.example.org/a/ollama-linux-amd64.tar.zst", "sha256:http://192.0.2.1/sha256sum.txt")
    assert checksum == "sha256:http://192.0.2.1/sha256sum.txt" and unpinned is not None


def test_profile_pins_are_used_and_the_command_line_wins(tmp_path: Path) -> None:
    (tmp_path / "pinned.yaml").write_text(
        "extends: budget-4070\n"
        f"ollama: {{archive_sha256: '{PIN}'}}\n"
        f"model: {{tag: 'qwen2.5-coder:14b-instruct-q4_K_M', num_ctx: 16384, manifest_digest: '{DIGEST}'}}\n"
        "model_registry: 192.0.2.1:5000\n")
    profile = load_profile("pinned", tmp_path)
    spec = spec_for(profile, HOSTS, RenderOptions(ollama_archive_url=HTTP_ARCHIVE))
    assert spec.ollama_archive_checksum == PIN and spec.model_manifest_digest == DIGEST
    other = "sha256:" + "ef" * 32
    spec = spec_for(profile, HOSTS, RenderOptions(ollama_archive_url=HTTP_ARCHIVE, ollama_archive_checksum=other))
    assert spec.ollama_archive_checksum == other


def test_plain_http_repository_key_needs_its_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "offline.yaml").write_text(
        "extends: budget-4070\n"
        "driver: {source: local-repo, local_repo_url: 'http://10.0.0.5/nvidia', "
        "local_repo_key_url: 'http://10.0.0.5/nvidia/key.asc'}\n")
    with pytest.raises(pins.UnpinnedSource, match="http://10.0.0.5/nvidia/key.asc: plain-HTTP driver repository "
                       "key has no pin, give driver.repo_key_fingerprint"):
        spec_for(load_profile("offline", tmp_path), HOSTS)


@pytest.mark.parametrize("field, value, message", [
    ("ollama: {archive_sha256: 'sha256:abc'}", "ollama.archive_sha256", "should match pattern"),
    ("driver: {repo_key_fingerprint: 'ABCD'}", "driver.repo_key_fingerprint", "should match pattern"),
    ("driver: {repo_key_fingerprint: '" + "A" * 50 + "'}", "driver.repo_key_fingerprint", "40 (OpenPGP v4)"),
    ("driver: {keyring_sha256: 'deadbeef'}", "driver.keyring_sha256", "should match pattern"),
])
def test_malformed_profile_pins_exit_2(tmp_path: Path, field: str, value: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(f"extends: budget-4070\n{field}\n")
    r = cli("profiles", "validate", str(tmp_path / "bad.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert value in r.stderr + r.stdout and message in r.stderr + r.stdout


# --- the sandbox lab's own pins ---------------------------------------------------------------


class _Lab:
    def __init__(self, home: Path) -> None:
        self.home = home


def test_the_lab_pins_the_manifest_its_registry_serves() -> None:
    from coderig_deploy.catalog import load_catalog
    from coderig_deploy.sandbox import services
    from coderig_deploy.sandbox.synthetic_models import build

    tag = load_profile("budget-4070").model.tag
    manifest = build(load_catalog().model(tag)).manifest  # the bytes registry.seed pushes
    assert services.manifest_pin(tag) == "sha256:" + hashlib.sha256(manifest).hexdigest()


def test_the_lab_pins_the_archive_as_built_not_as_served(tmp_path: Path) -> None:
    from coderig_deploy.sandbox import services

    lab = _Lab(tmp_path)
    served = tmp_path / "services/artifacts/ollama/releases/download/v0.33.0/ollama-linux-amd64.tar.zst"
    served.parent.mkdir(parents=True)
    served.write_bytes(b"as built")
    assert services.archive_pin(lab, "0.33.0") == "sha256:" + hashlib.sha256(b"as built").hexdigest()
    services._record_pin(tmp_path / "services" / services.PINS, "0.33.0", PIN)
    served.write_bytes(b"tampered later")
    assert services.archive_pin(lab, "0.33.0") == PIN
    assert json.loads((tmp_path / "services" / services.PINS).read_text()) == {"ollama-0.33.0": PIN}
    assert services.archive_pin(lab, "9.9.9") is None


def test_apply_refuses_an_unpinned_source_before_a_run_directory_exists(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    r = cli("apply", "--profile", "budget-4070", "localhost", "--runs-dir", str(runs), "--ollama-url", HTTP_ARCHIVE)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "plain-HTTP Ollama archive has no pin, give --ollama-sha256" in r.stderr
    assert not runs.exists() or not any(runs.iterdir())
