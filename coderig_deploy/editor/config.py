"""Ready-to-paste editor configuration for a provisioned host (pure: profile in, text out).

Each editor gets the file its own tool reads, pointing at the host's Ollama and naming
the profile's context variants (`coderig/<model>:<ctx>`), so the planned context holds
even where a tool sends no num_ctx:
- continue: `~/.continue/config.yaml` (Continue for VS Code and JetBrains, schema v1):
  every model with its roles; the autocomplete model with role `autocomplete`.
- zed: `~/.config/zed/settings.json`: the Ollama provider's `api_url` and chat models.
- vscode: `settings.json` for GitHub Copilot Chat's Ollama provider
  (`github.copilot.chat.byok.ollamaEndpoint`; pick the models under Manage Models >
  Ollama). Copilot has no Ollama autocompletion: use the Continue file for that.
- aider: `.aider.conf.yml` (`ollama_chat/<model>`, OLLAMA_API_BASE) and
  `.aider.model.settings.yml` (num_ctx, so aider never falls back to 2K).
Ollama binds to loopback by default: the tools then reach it through an SSH tunnel.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import yaml

from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import ModelRef, Profile
from coderig_deploy.targets import from_argument, in_brackets

EDITORS = ("continue", "zed", "vscode", "aider")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CONTINUE_ROLES = {"chat": ["chat", "edit", "apply"], "autocomplete": ["autocomplete"], "embeddings": ["embed"]}


@dataclass(frozen=True)
class Endpoint:
    """Where the editor reaches Ollama, and the tunnel to open first (None when reachable directly)."""

    api_base: str
    tunnel: str | None


@dataclass(frozen=True)
class ConfigFile:
    editor: str
    path: str
    format: str  # "yaml" or "json"
    content: str


def parse_host(text: str) -> tuple[str, str, int | None]:
    """`[user@]address[:port]` (the SSH port) read as apply reads its hosts, so a host apply
    provisioned is one editor-config takes; UserInputError when it is not that."""
    target = from_argument(text)
    return target.user or "", target.address or target.name, target.port


def endpoint(profile: Profile, host: str, local_port: int = 11434, key: str | None = None,
             known_hosts: str | None = None) -> Endpoint:
    """The API base the editor uses; through `ssh -N -L` when Ollama listens on loopback only.

    The tunnel checks the host key (StrictHostKeyChecking=yes, against `known_hosts` when given)."""
    user, address, ssh_port = parse_host(host)
    bind, _, port = profile.ollama.host.rpartition(":")
    bind = bind.strip("[]")
    if bind in LOOPBACK:
        target = f"{user}@{address}" if user else address  # ssh takes an IPv6 destination bare
        flags = [f"-p {ssh_port}"] if ssh_port is not None else []
        flags += [f"-i {shlex.quote(key)}"] if key else []
        flags += ["-o StrictHostKeyChecking=yes"]
        flags += [f"-o UserKnownHostsFile={shlex.quote(known_hosts)}"] if known_hosts else []
        # Ollama bound to ::1 does not answer on 127.0.0.1: the tunnel ends where it listens.
        listens = "[::1]" if bind == "::1" else "127.0.0.1"
        return Endpoint(f"http://127.0.0.1:{local_port}",
                        f"ssh -N -L {local_port}:{listens}:{port} {' '.join(flags)} {target}")
    reach = address if bind in ("0.0.0.0", "::", "") else bind
    return Endpoint(f"http://{in_brackets(reach)}:{port}", None)


def _label(ref: ModelRef) -> str:
    return f"{ref.tag} ({ref.role}, {ref.num_ctx} ctx)"


def _header(profile: Profile, ep: Endpoint, comment: str) -> str:
    lines = [f"coderig-deploy editor-config: profile {profile.name}, Ollama at {ep.api_base}"]
    if ep.tunnel:
        lines.append(f"open the tunnel first: {ep.tunnel}")
    return "".join(f"{comment} {line}\n" for line in lines)


def continue_config(profile: Profile, ep: Endpoint) -> ConfigFile:
    models = [{"name": _label(r), "provider": "ollama", "model": r.variant_name, "apiBase": ep.api_base,
               "roles": _CONTINUE_ROLES[r.role], "defaultCompletionOptions": {"contextLength": r.num_ctx}}
              for r in profile.all_models]
    doc = {"name": f"coderig {profile.name}", "version": "1.0.0", "schema": "v1", "models": models}
    text = _header(profile, ep, "#") + yaml.safe_dump(doc, sort_keys=False)
    return ConfigFile("continue", "~/.continue/config.yaml", "yaml", text)


def _chat_models(profile: Profile) -> list[ModelRef]:
    return [r for r in profile.all_models if r.role == "chat"]


def zed_config(profile: Profile, ep: Endpoint) -> ConfigFile:
    chats = _chat_models(profile)
    doc: dict[str, object] = {"language_models": {"ollama": {"api_url": ep.api_base, "available_models": [
        {"name": r.variant_name, "display_name": _label(r), "max_tokens": r.num_ctx} for r in chats]}}}
    if chats:
        doc["agent"] = {"default_model": {"provider": "ollama", "model": chats[0].variant_name}}
    return ConfigFile("zed", "~/.config/zed/settings.json", "json", json.dumps(doc, indent=2) + "\n")


def vscode_config(profile: Profile, ep: Endpoint) -> ConfigFile:
    doc = {"github.copilot.chat.byok.ollamaEndpoint": ep.api_base}
    return ConfigFile("vscode", ".vscode/settings.json", "json", json.dumps(doc, indent=2) + "\n")


def aider_config(profile: Profile, ep: Endpoint) -> list[ConfigFile]:
    chats = _chat_models(profile)
    if not chats:
        return []
    conf = {"model": f"ollama_chat/{chats[0].variant_name}", "set-env": [f"OLLAMA_API_BASE={ep.api_base}"]}
    settings = [{"name": f"ollama_chat/{r.variant_name}", "extra_params": {"num_ctx": r.num_ctx}} for r in chats]
    return [ConfigFile("aider", ".aider.conf.yml", "yaml", _header(profile, ep, "#") + yaml.safe_dump(conf, sort_keys=False)),
            ConfigFile("aider", ".aider.model.settings.yml", "yaml", yaml.safe_dump(settings, sort_keys=False))]


def render(profile: Profile, ep: Endpoint, editor: str = "all") -> list[ConfigFile]:
    """The files for `editor` (one of EDITORS, or all); UserInputError when it cannot be served."""
    if editor not in (*EDITORS, "all"):
        raise UserInputError(f"--editor {editor!r}: choose one of {', '.join(EDITORS)} or all")
    wanted = EDITORS if editor == "all" else (editor,)
    if editor in ("zed", "aider") and not _chat_models(profile):
        raise UserInputError(f"profile {profile.name} has no chat model, and {editor} uses Ollama for chat only; "
                             "use --editor continue for its autocomplete model")
    files: list[ConfigFile] = []
    for name in wanted:
        if name == "continue":
            files.append(continue_config(profile, ep))
        elif name == "zed" and _chat_models(profile):
            files.append(zed_config(profile, ep))
        elif name == "vscode":
            files.append(vscode_config(profile, ep))
        elif name == "aider":
            files += aider_config(profile, ep)
    return files


def write_files(directory: Path, profile: Profile, ep: Endpoint, files: list[ConfigFile]) -> list[Path]:
    """Write each file under `directory/<editor>/` and a README.md naming where each goes."""
    from coderig_deploy.atomicfile import write_all

    texts = {directory / f.editor / Path(f.path).name: f.content for f in files}
    lines = [f"# Editor configuration for profile {profile.name}", "",
             f"Ollama: {ep.api_base}" + (f", through `{ep.tunnel}`" if ep.tunnel else ""), ""]
    lines += [f"- `{f.editor}/{Path(f.path).name}` -> `{f.path}`" for f in files]
    texts[directory / "README.md"] = "\n".join(lines) + "\n"
    for path in texts:
        path.parent.mkdir(parents=True, exist_ok=True)
    write_all(texts)
    return list(texts)


HostLink = tuple[str, str | None, str | None, str | None]  # name, [user@]address[:port] or None (here), key, known_hosts


def write_for_run(directory: Path, groups: list[tuple[Profile, list[HostLink]]]) -> Path:
    """Every editor's files for each host of a run, under `directory/<host>/`, each for its own
    profile (a fleet has several); an index README.md."""
    lines = ["# Editor configuration", "",
             "`coderig-deploy editor-config --profile PROFILE HOST` prints the same.", ""]
    for profile, hosts in groups:
        for name, host, key, known in hosts:
            ep = (endpoint(profile, host, key=key, known_hosts=known) if host
                  else Endpoint(f"http://{profile.ollama.host}", None))
            write_files(directory / name, profile, ep, render(profile, ep, "all"))
            lines.append(f"- {name} ({profile.name}): [{name}/README.md]({name}/README.md)")
    index = directory / "README.md"
    from coderig_deploy.atomicfile import write_all
    write_all({index: "\n".join(lines) + "\n"})
    return index
