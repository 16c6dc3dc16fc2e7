"""editor-config: each tool's file parses as its own format and names the right models and context."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coderig_deploy.editor.config import endpoint, render, write_for_run
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import load_profile

TWO = load_profile("editor-qwen7b-starcoder2")
CHAT, FIM = "coderig/qwen2.5-coder-7b:16k", "coderig/starcoder2-3b:4k"


def _parse(f) -> object:  # type: ignore[no-untyped-def]
    return yaml.safe_load(f.content) if f.format == "yaml" else json.loads(f.content)


def test_loopback_ollama_is_reached_through_a_host_key_checked_tunnel() -> None:
    ep = endpoint(TWO, "deploy@ws1:2222", 11500, key="/k/id", known_hosts="/k/known")
    assert ep.api_base == "http://127.0.0.1:11500"
    assert ep.tunnel == ("ssh -N -L 11500:127.0.0.1:11434 -p 2222 -i /k/id -o StrictHostKeyChecking=yes "
                         "-o UserKnownHostsFile=/k/known deploy@ws1")


def test_exposed_ollama_is_reached_directly(tmp_path: Path) -> None:
    (tmp_path / "exposed.yaml").write_text("extends: editor-qwen7b-starcoder2\n"
                                           "ollama: {host: '0.0.0.0:11434', expose: true}\n")
    ep = endpoint(load_profile(tmp_path / "exposed.yaml"), "ws1.lan")
    assert ep.api_base == "http://ws1.lan:11434" and ep.tunnel is None


def test_bad_host_is_one_clear_line() -> None:
    with pytest.raises(UserInputError, match=r"cannot read host .*use \[user@\]host\[:port\]"):
        endpoint(TWO, "ws1;rm -rf /")


def test_every_file_parses_and_names_models_and_context() -> None:
    ep = endpoint(TWO, "ws1")
    files = {f.path: _parse(f) for f in render(TWO, ep, "all")}
    cont = files["~/.continue/config.yaml"]
    assert [(m["model"], m["roles"], m["defaultCompletionOptions"]["contextLength"], m["apiBase"])
            for m in cont["models"]] == [(CHAT, ["chat", "edit", "apply"], 16384, ep.api_base),
                                         (FIM, ["autocomplete"], 4096, ep.api_base)]
    zed = files["~/.config/zed/settings.json"]["language_models"]["ollama"]
    assert zed["api_url"] == ep.api_base
    assert [(m["name"], m["max_tokens"]) for m in zed["available_models"]] == [(CHAT, 16384)]
    assert files[".vscode/settings.json"] == {"github.copilot.chat.byok.ollamaEndpoint": ep.api_base}
    assert files[".aider.conf.yml"] == {"model": f"ollama_chat/{CHAT}", "set-env": [f"OLLAMA_API_BASE={ep.api_base}"]}
    assert files[".aider.model.settings.yml"] == [{"name": f"ollama_chat/{CHAT}", "extra_params": {"num_ctx": 16384}}]


def test_autocomplete_only_profile_gets_continue_and_refuses_chat_only_tools() -> None:
    prof = load_profile("autocomplete-starcoder2")
    ep = endpoint(prof, "ws1")
    assert [f.editor for f in render(prof, ep, "all")] == ["continue", "vscode"]
    with pytest.raises(UserInputError, match="no chat model"):
        render(prof, ep, "aider")


def test_run_directory_gets_files_per_host_and_an_index(tmp_path: Path) -> None:
    index = write_for_run(tmp_path / "editor", [(TWO, [("ws1", "root@10.0.0.2", "/k/id", "/k/kh"),
                                                       ("localhost", None, None, None)])])
    assert f"- ws1 ({TWO.name}): [ws1/README.md](ws1/README.md)" in index.read_text()
    assert yaml.safe_load((tmp_path / "editor/ws1/continue/config.yaml").read_text())["models"][1]["model"] == FIM
    local = json.loads((tmp_path / "editor/localhost/zed/settings.json").read_text())
    assert local["language_models"]["ollama"]["api_url"] == "http://127.0.0.1:11434"


def test_cli_prints_json_and_rejects_an_unknown_editor() -> None:
    cmd = [sys.executable, "-m", "coderig_deploy", "editor-config", "--profile", "editor-qwen7b-starcoder2", "ws1"]
    out = subprocess.run([*cmd, "--editor", "continue", "--json"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["tunnel"].startswith("ssh -N -L 11434:127.0.0.1:11434") and len(doc["files"]) == 1
    bad = subprocess.run([*cmd, "--editor", "emacs"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "choose one of continue, zed, vscode, aider or all" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
