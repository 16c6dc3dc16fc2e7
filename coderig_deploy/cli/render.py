"""`coderig-deploy render --profile P HOST... -o DIR`: write the Ansible project, run nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import spec_for
from coderig_deploy.render import render_project, write_project
from coderig_deploy.targets import TargetOptions, resolve_targets


@app.command(name="render")
def render_cmd(
    profile: Annotated[str, typer.Option(help="Profile name or path to a profile YAML")],
    output: Annotated[Path, typer.Option("-o", "--output", help="New directory for the project")],
    hosts: Annotated[list[str] | None, typer.Argument(
        help="[user@]host[:port], localhost, or sandbox")] = None,
    inventory: Annotated[Path | None, typer.Option("-i", "--inventory", help="Ansible inventory")] = None,
    user: Annotated[str | None, typer.Option(help="SSH user for hosts given without one")] = None,
    key: Annotated[Path | None, typer.Option(help="SSH private key file")] = None,
    forks: Annotated[int, typer.Option(help="Hosts provisioned in parallel", min=1, max=200)] = 5,
    allow_reboot: Annotated[bool, typer.Option(help="Let the project reboot hosts for a new driver")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Target the running sandbox lab")] = False,
    model_registry: Annotated[str | None, typer.Option(help="host:port of a model registry mirror")] = None,
    ollama_url: Annotated[str | None, typer.Option(help="URL of the Ollama release archive")] = None,
    profiles_dir: Annotated[Path | None, typer.Option(help="Extra directory of profiles")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the written files as JSON")] = False,
) -> int:
    """Render the self-contained Ansible project (plain ansible-playbook runs it)."""
    loaded = load_profile(profile, profiles_dir)
    targets, options = resolve_targets(loaded, TargetOptions(
        hosts=hosts or [], inventory=inventory, user=user, key=key, sandbox=sandbox, forks=forks,
        allow_reboot=allow_reboot, model_registry=model_registry, ollama_url=ollama_url))
    files = render_project(spec_for(loaded, targets, options))
    write_project(files, output)
    data = {"output": str(output.resolve()), "files": sorted(files), "hosts": [t.name for t in targets]}
    emit(data, json_out, lambda c: c.print(
        f"wrote {len(files)} files to {output}\nrun it: cd {output} && ansible-playbook site.yml"))
    return 0
