"""Parsers behind `verify`: real /proc, ollama, systemctl and /proc/net/tcp outputs."""

import pytest

from coderig_deploy.verify import facts
from coderig_deploy.verify.spec import manifest_path


@pytest.mark.parametrize("text,version", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 07:09:57 UTC 2025\n"
     "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n", "580.65.06"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build  "
     "(dvs-builder@U16-I3-B03-4-3)  Thu Oct 10 12:02:24 UTC 2024\n", "565.57.01"),
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  384.111  Tue Dec 19 23:51:45 PST 2017\n",
     "384.111"),
    ("", None),
])
def test_driver_version(text: str, version: str | None) -> None:
    assert facts.driver_version(text) == version


def test_ollama_version_ignores_client_warning() -> None:
    text = "ollama version is 0.33.0\nWarning: client version is 0.32.1\n"
    assert facts.ollama_version(text) == "0.33.0"
    assert facts.ollama_version("command not found") is None


def test_systemd_environment_quoting() -> None:
    value = 'OLLAMA_HOST=127.0.0.1:11434 "OLLAMA_ORIGINS=a b" OLLAMA_KEEP_ALIVE=30m'
    assert facts.systemd_environment(value) == {
        "OLLAMA_HOST": "127.0.0.1:11434", "OLLAMA_ORIGINS": "a b", "OLLAMA_KEEP_ALIVE": "30m"}


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 1 1 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0
   2: 0100007F:2CAA 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   998        0 3 1 0
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:2CAA 00000000000000000000000000000000:0000 0A 0
   1: 0000000000000000FFFF00000B004F0A:1F90 00000000000000000000000000000000:0000 0A 0
"""


def test_listening_sockets() -> None:
    assert facts.listening(TCP) == {("127.0.0.1", 11434), ("0.0.0.0", 22)}
    assert facts.listening(TCP6) == {("::", 11434), ("10.79.0.11", 8080)}


@pytest.mark.parametrize("name,path", [
    ("qwen2.5-coder:32b", "/m/manifests/registry.ollama.ai/library/qwen2.5-coder/32b"),
    ("coderig/starcoder2-3b:16k", "/m/manifests/registry.ollama.ai/coderig/starcoder2-3b/16k"),
    ("reg:5000/library/x", "/m/manifests/reg:5000/library/x/latest"),
])
def test_manifest_path(name: str, path: str) -> None:
    assert manifest_path("/m/", name) == path
