"""detect's text (80 columns, plain) and JSON, and its command line's bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coderig_deploy.detect import report
from coderig_deploy.detect.choose import choose
from coderig_deploy.detect.facts import host_facts, unreachable
from coderig_deploy.profiles import list_profiles, load_profile

CLI = str(Path(sys.executable).parent / "coderig-deploy")
SECTIONS = {
    "nvidia-smi": "0, NVIDIA GeForce RTX 4090, GPU-1, 24564, 00000000:01:00.0, 0x268410DE, 580.95.05\n"
                  "1, NVIDIA GeForce RTX 4090, GPU-2, 24564, 00000000:02:00.0, 0x268410DE, 580.95.05\n",
    "lspci": "01:00.0 0300: 10de:2684\n02:00.0 0300: 10de:2684\n03:00.0 0300: 10de:ffff\n",
    "meminfo": "MemTotal: 131072000 kB\n", "os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    "models-dir": "/srv/a-rather-long-directory-name/for-the-ollama-model-store/that-goes-on/models",
    "df": "F 1024-blocks Used Available Capacity Mounted\n/dev/x 1 1 104857600 1% /srv\n",
    "ollama-version": "ollama version is 0.33.3\n",
    "ollama-tags": '{"models": [{"name": "qwen2.5-coder:32b-instruct-q4_K_M"}, {"name": "coderig/a:24k"}]}',
}


def _results():  # type: ignore[no-untyped-def]
    profiles = [load_profile(n) for n in list_profiles()]
    facts = [host_facts("tower-with-a-long-name.example.internal", SECTIONS), unreachable("ws9", "cannot SSH")]
    return [(f, choose(f, profiles)) for f in facts]


def test_text_fits_80_columns_and_says_what_was_found() -> None:
    text = report.text(_results())
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "unknown PCI ids (not guessed): 10de:ffff" in text
    assert "Ollama: 0.33.3; models: coderig/a:24k, qwen2.5-coder:32b-instruct-q4_K_M" in text
    lines = text.splitlines()
    fits = lines.index("  profiles that fit, best first:     GPUs   VRAM MiB  tok/s plan / expected")
    assert lines[fits + 1].split()[:2] == ["dual-4090", "2"]
    assert "auto picks: dual-4090" in text and "ws9\n  unreachable: cannot SSH" in text


def test_json_holds_facts_fits_and_the_choice() -> None:
    doc = report.document(_results())
    assert doc[0]["auto"]["profile"] == "dual-4090" and doc[0]["unknown_pci_ids"] == ["10de:ffff"]
    assert [f["profile"] for f in doc[0]["fits"]][0] == "dual-4090"
    assert doc[0]["fits"][0]["expected_decode_tok_s"] == load_profile("dual-4090").expect.decode_tok_s
    assert doc[1]["reachable"] is False and doc[1]["auto"]["profile"] is None


def test_no_hosts_is_one_line_and_exit_2() -> None:
    proc = subprocess.run([CLI, "detect"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no hosts: give HOST arguments, -i INVENTORY, or --sandbox"


def test_apply_without_a_profile_for_a_host_is_exit_2() -> None:
    proc = subprocess.run([CLI, "apply", "ws1.example"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error: host 'ws1.example' has no profile: give --profile NAME (or auto)")
