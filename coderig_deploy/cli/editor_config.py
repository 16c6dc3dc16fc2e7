"""`coderig-deploy editor-config`: configuration for coding tools, pointing at a host."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coderig_deploy.cli import app
from coderig_deploy.cli.options import ProfileOpt, ProfilesDirOpt
from coderig_deploy.cli.output import console, emit, plain
from coderig_deploy.editor.config import endpoint, render, write_files
from coderig_deploy.profiles import load_profile


@app.command("editor-config")
def editor_config(
    host: Annotated[str, typer.Argument(help="[user@]address[:port] of the provisioned host (SSH)")],
    profile: ProfileOpt,
    editor: Annotated[str, typer.Option(help="continue, zed, vscode, aider or all")] = "all",
    local_port: Annotated[int, typer.Option(help="Local end of the SSH tunnel", min=1, max=65535)] = 11434,
    key: Annotated[Path | None, typer.Option(help="SSH private key the tunnel uses")] = None,
    known_hosts: Annotated[Path | None, typer.Option(help="known_hosts file the tunnel checks the host key against")] = None,
    profiles_dir: ProfilesDirOpt = None,
    out: Annotated[Path | None, typer.Option(help="Also write the files into this directory")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Print ready-to-paste editor configuration for the profile's models on HOST."""
    prof = load_profile(profile, profiles_dir)
    ep = endpoint(prof, host, local_port, str(key) if key else None, str(known_hosts) if known_hosts else None)
    files = render(prof, ep, editor)
    if out is not None:
        write_files(out, prof, ep, files)
    data = {"profile": prof.name, "api_base": ep.api_base, "tunnel": ep.tunnel,
            "files": [{"editor": f.editor, "path": f.path, "format": f.format, "content": f.content} for f in files]}

    def show(c: object) -> None:
        if ep.tunnel:
            console.print(plain("# first, keep this tunnel open: ", ep.tunnel), soft_wrap=True)
        for f in files:
            console.print(plain(f"\n# --- {f.editor}: {f.path} ---"), soft_wrap=True)
            console.print(plain(f.content.rstrip("\n")), soft_wrap=True)

    emit(data, json_out, show)
    return 0
