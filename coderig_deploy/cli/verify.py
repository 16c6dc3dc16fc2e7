"""`coderig-deploy verify`: testinfra checks of hosts' state against a profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit
from coderig_deploy.cli.report import render_run
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import Profile, load_profile
from coderig_deploy.project import AIRGAPPED_ENV
from coderig_deploy.reports import host_report, run_report, write_run
from coderig_deploy.smoke import expectations
from coderig_deploy.verify.container import check_hosts, expect_for
from coderig_deploy.verify.runner import Target, run_verify
from coderig_deploy.verify.spec import spec_for


def _parse_target(text: str, key: Path | None, known_hosts: Path | None) -> Target:
    user, _, rest = text.rpartition("@")
    address, _, port = rest.partition(":")
    if not address or (port and not port.isdigit()):
        raise UserInputError(f"host {text!r}: expected [user@]address[:port]")
    return Target(text, address, user or "root", int(port or 22), key, known_hosts)


def _sandbox_targets() -> list[Target]:
    from coderig_deploy.sandbox.lab import Lab

    lab = Lab()
    hosts = lab.hosts()
    if not hosts:
        raise UserInputError("no sandbox hosts are up; start some with `coderig-deploy sandbox up`")
    return [Target(h.name, h.ip, "root", 22, lab.key, lab.known_hosts) for h in hosts]


def _sandbox_image() -> str | None:
    """The lab's simulator image stands in for the profile's pinned one (as in apply --sandbox)."""
    from coderig_deploy.sandbox import Lab, services

    return services.image_pin(Lab())


def _image(profile: Profile, image: str | None, bundle: Path | None) -> tuple[str | None, str | None]:
    """The pinned image and, from a bundle, the image ID its archive loads as."""
    if bundle is None:
        return image, None
    from coderig_deploy.bundle import load_manifest
    from coderig_deploy.bundle.install import bundle_image

    entry = bundle_image(bundle, load_manifest(bundle), profile, image)
    return (entry.reference, entry.image_id) if entry else (image, None)


@app.command()
def verify(
    hosts: Annotated[list[str] | None, typer.Argument(help="[user@]address[:port] ...")] = None,
    profile: Annotated[str, typer.Option(help="Profile the hosts were provisioned with")] = ...,
    sandbox: Annotated[bool, typer.Option(help="Verify every running sandbox host")] = False,
    profiles_dir: Annotated[Path | None, typer.Option(help="Extra directory of profiles")] = None,
    identity: Annotated[Path | None, typer.Option("--key", "--identity", help="SSH private key file")] = None,
    known_hosts: Annotated[Path | None, typer.Option(help="known_hosts file (default ~/.ssh/known_hosts)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write report.json/.md/junit.xml here")] = None,
    bundle: Annotated[Path | None, typer.Option(help="Bundle the hosts were applied from (runtime docker: "
                                                     "its image is checked by the ID it loads as)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Check driver, Ollama, service, drop-in, bind address, models and store on hosts."""
    if bool(hosts) == sandbox:
        raise UserInputError("give HOST arguments or --sandbox (one of the two)")
    prof = load_profile(profile, profiles_dir)
    targets = _sandbox_targets() if sandbox else \
        [_parse_target(h, identity, known_hosts) for h in hosts or []]
    spec = spec_for(prof)
    exp = expectations(prof)
    container = expect_for(prof, *_image(prof, _sandbox_image() if sandbox else None, bundle),  # bad input first
                           extra_env=AIRGAPPED_ENV if bundle else None)
    results = run_verify(targets, spec, editor=exp)
    if container is not None:
        for name, checks in check_hosts(targets, container).items():
            results.setdefault(name, []).extend(checks)
    reports = [host_report(t.name, None, exp, results.get(t.name, [])) for t in targets]
    rep = run_report(reports, prof.name, prof.model.tag)
    if out:
        write_run(out, rep)
    # The summary's benchmark columns are empty for verify: print its checks instead.
    emit(rep.model_dump(mode="json"), json_out, lambda c: render_run(c, rep, summary=False, all_checks=True))
    return 1 if rep.verdict == "fail" else 0
