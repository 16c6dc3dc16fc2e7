"""`coderig-deploy validate --airgapped`: the auditor's one command for an air-gapped site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coderig_deploy.airgap.checks import Expected
from coderig_deploy.airgap.validate import ValidateRequest, validate
from coderig_deploy.bundle import load_verified
from coderig_deploy.cli import app
from coderig_deploy.cli.options import AllowedSignersOpt
from coderig_deploy.cli.output import console, emit
from coderig_deploy.cli.report import render_run
from coderig_deploy.cli.verify import _parse_target, _sandbox_targets
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import load_profile


@app.command(name="validate")
def validate_cmd(
    hosts: Annotated[list[str] | None, typer.Argument(help="[user@]address[:port] ...")] = None,
    airgapped: Annotated[bool, typer.Option("--airgapped", help="Check that the hosts are air-gapped and "
                                            "serve the bundle's model (the one mode today)")] = False,
    bundle: Annotated[Path, typer.Option("--bundle", help="The bundle the hosts were installed from")] = ...,
    allowed_signers: AllowedSignersOpt = None,
    profile: Annotated[str | None, typer.Option(help="Profile (default: the bundle's only profile)")] = None,
    registry: Annotated[list[str] | None, typer.Option(
        "--registry", help="host:port of the site's registry mirror (repeatable); no other is allowed")] = None,
    sandbox: Annotated[bool, typer.Option(help="Validate every running sandbox host")] = False,
    identity: Annotated[Path | None, typer.Option("--key", "--identity", help="SSH private key file")] = None,
    known_hosts: Annotated[Path | None, typer.Option(help="known_hosts file (default ~/.ssh/known_hosts)")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go")] = Path(".coderig/runs"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> int:
    """No default route, no way to a public address, OLLAMA_NO_CLOUD, the bundle's model digest, smoke benchmark."""
    if not airgapped:
        raise UserInputError("validate needs a mode: give --airgapped")
    if bool(hosts) == sandbox:
        raise UserInputError("give HOST arguments or --sandbox (one of the two)")
    for value in registry or []:
        _hostport(value)
    manifest = load_verified(bundle, allowed_signers, full=False)  # sizes: the digests are what is compared
    if profile is None:
        if len(manifest.profiles) != 1:
            raise UserInputError(f"--bundle {bundle} holds {len(manifest.profiles)} profiles: give --profile NAME")
        profile = manifest.profiles[0].name
    carried = next((p for p in manifest.profiles if p.name == profile), None)
    prof = load_profile(str(bundle / carried.path) if carried else profile)  # the bundle's copy when it has one
    model = next((m for m in manifest.models if m.name == prof.model.tag), None)
    if model is None:
        raise UserInputError(f"--bundle {bundle} has no model {prof.model.tag} for profile {prof.name}")
    targets = _sandbox_targets() if sandbox else [_parse_target(h, identity, known_hosts) for h in hosts or []]
    run_dir, report = validate(ValidateRequest(
        profile=prof, targets=targets, runs_dir=runs_dir,
        expected=Expected(model=model.name, digest=model.manifest_digest, registries=tuple(registry or []))))
    emit(report.model_dump(mode="json"), json_out,
         lambda c: (render_run(c, report, summary=False, all_checks=True), console.print(f"run directory: {run_dir}",
                                                                                         markup=False)))
    return 1 if report.verdict == "fail" else 0


def _hostport(value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserInputError(f"--registry {value!r}: expected host:port")
