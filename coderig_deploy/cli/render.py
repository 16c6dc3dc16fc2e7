"""`coderig-deploy render --profile P HOST... -o DIR`: write the Ansible project, run nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coderig_deploy.cli import app
from coderig_deploy.cli.options import (
    AllowRebootOpt,
    AllowUnpinnedOpt,
    ForksOpt,
    HostsArg,
    InventoryOpt,
    KeyOpt,
    ModelDigestOpt,
    ModelRegistryOpt,
    OllamaSha256Opt,
    OllamaUrlOpt,
    ProfileOpt,
    ProfilesDirOpt,
    SandboxOpt,
    UserOpt,
)
from coderig_deploy.cli.output import emit
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import spec_for
from coderig_deploy.render import render_project, write_project
from coderig_deploy.targets import TargetOptions, resolve_targets


@app.command(name="render")
def render_cmd(
    profile: ProfileOpt,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="DIR", help="New directory for the project")],
    hosts: HostsArg = None,
    inventory: InventoryOpt = None,
    user: UserOpt = None,
    key: KeyOpt = None,
    forks: ForksOpt = None,
    allow_reboot: AllowRebootOpt = False,
    sandbox: SandboxOpt = False,
    model_registry: ModelRegistryOpt = None,
    ollama_url: OllamaUrlOpt = None,
    ollama_sha256: OllamaSha256Opt = None,
    model_digest: ModelDigestOpt = None,
    allow_unpinned: AllowUnpinnedOpt = False,
    profiles_dir: ProfilesDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the written files as JSON")] = False,
) -> int:
    """Render the self-contained Ansible project (plain ansible-playbook runs it)."""
    loaded = load_profile(profile, profiles_dir)
    targets, options = resolve_targets(loaded, TargetOptions(
        hosts=hosts or [], inventory=inventory, user=user, key=key, sandbox=sandbox, forks=forks,
        allow_reboot=allow_reboot, model_registry=model_registry, ollama_url=ollama_url,
        ollama_sha256=ollama_sha256, model_digest=model_digest, allow_unpinned=allow_unpinned))
    files = render_project(spec_for(loaded, targets, options))
    try:
        write_project(files, output)
    except OSError as exc:  # read-only, missing parent, a file in the way
        raise UserInputError(f"--output {output}: cannot write the project: {exc.strerror}") from None
    data = {"output": str(output.resolve()), "files": sorted(files), "hosts": [t.name for t in targets]}
    emit(data, json_out, lambda c: c.print(
        f"wrote {len(files)} files to {output}\nrun it: cd {output} && ansible-playbook site.yml", markup=False))
    return 0
