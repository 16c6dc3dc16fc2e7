"""The testinfra checks, one test per check; `target` is a testinfra Host, `spec` a dict.

Run by `coderig_deploy.verify.runner`, which supplies both fixtures; each test's
assert message is the reason shown to the user.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from coderig_deploy.verify import facts
from coderig_deploy.verify.spec import manifest_path


def _native_only(spec: dict[str, Any]) -> None:
    if spec.get("runtime") == "docker":
        pytest.skip("runtime docker: the container checks cover it")


def test_driver_branch(target: Any, spec: dict[str, Any]) -> None:
    if spec["driver_branch"] is None:
        return
    proc = target.file("/proc/driver/nvidia/version")
    assert proc.exists, "no /proc/driver/nvidia/version: the NVIDIA kernel module is not loaded"
    version = facts.driver_version(proc.content_string)
    assert version, f"cannot read a version in {proc.content_string[:80]!r}"
    assert version.split(".")[0] == str(spec["driver_branch"]), \
        f"driver {version} loaded, pinned branch is {spec['driver_branch']}"


def test_ollama_version(target: Any, spec: dict[str, Any]) -> None:
    _native_only(spec)
    out = target.run("ollama --version")
    assert out.rc == 0, f"`ollama --version` failed (rc {out.rc}): {out.stderr.strip()[:120]}"
    version = facts.ollama_version(out.stdout + out.stderr)
    assert version == spec["ollama_version"], \
        f"Ollama {version} installed, profile pins {spec['ollama_version']}"


def test_unit_enabled_active(target: Any, spec: dict[str, Any]) -> None:
    _native_only(spec)
    unit = target.service("ollama")
    assert unit.is_enabled, "ollama.service is not enabled (will not start at boot)"
    assert unit.is_running, "ollama.service is not active"


def test_dropin_environment(target: Any, spec: dict[str, Any]) -> None:
    _native_only(spec)
    out = target.check_output("systemctl show ollama --property=Environment --value")
    env = facts.systemd_environment(out)
    wrong = {k: env.get(k) for k, v in spec["ollama_env"].items() if env.get(k) != v}
    assert not wrong, "environment differs from the plan: " + ", ".join(
        f"{k}={wrong[k]!r} (plan {spec['ollama_env'][k]!r})" for k in sorted(wrong))


def test_bind_address(target: Any, spec: dict[str, Any]) -> None:
    host, _, port = spec["bind"].rpartition(":")
    text = target.run("cat /proc/net/tcp /proc/net/tcp6").stdout
    ours = {addr for addr, p in facts.listening(text) if p == int(port)}
    assert ours, f"nothing listens on port {port}"
    assert ours == {host}, f"port {port} listens on {sorted(ours)}, plan {host} only"


def test_model_present(target: Any, spec: dict[str, Any]) -> None:
    missing = [n for n in (spec["model"], spec["variant"], *spec["extra_models"])
               if not target.file(manifest_path(spec["models_dir"], n)).is_file]
    assert not missing, f"model store lacks {', '.join(missing)} (no manifest)"


def test_store_owned_by_ollama(target: Any, spec: dict[str, Any]) -> None:
    store = target.file(spec["models_dir"])
    assert store.is_directory, f"{spec['models_dir']} does not exist"
    assert store.user == "ollama", f"{spec['models_dir']} is owned by {store.user}"
    stray = target.run(f"find {shlex.quote(spec['models_dir'])} ! -user ollama -print").stdout.split()
    assert not stray, f"{len(stray)} path(s) not owned by ollama, e.g. {stray[0]}"


def test_store_not_world_writable(target: Any, spec: dict[str, Any]) -> None:
    found = target.run(f"find {shlex.quote(spec['models_dir'])} -perm -0002 ! -type l -print").stdout.split()
    assert not found, f"{len(found)} world-writable path(s) in the store, e.g. {found[0]}"
