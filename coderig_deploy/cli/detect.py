"""`coderig-deploy detect HOST... | -i INV | --sandbox [--json]`: what each host has
and which profiles fit it, best first."""

from __future__ import annotations

from typing import Annotated

import typer

from coderig_deploy.cli import app
from coderig_deploy.cli.options import HostsArg, InventoryOpt, KeyOpt, ProfilesDirOpt, SandboxOpt, UserOpt
from coderig_deploy.cli.output import console, emit
from coderig_deploy.detect import report
from coderig_deploy.detect.assign import all_profiles, detect_all, probe_target
from coderig_deploy.detect.choose import choose
from coderig_deploy.errors import UserInputError
from coderig_deploy.safetext import safe
from coderig_deploy.targets import SANDBOX, from_argument, from_inventory, from_sandbox


@app.command(name="detect")
def detect_cmd(
    hosts: HostsArg = None,
    inventory: InventoryOpt = None,
    user: UserOpt = None,
    key: KeyOpt = None,
    sandbox: SandboxOpt = False,
    profiles_dir: ProfilesDirOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> int:
    """Read each host's GPUs, RAM, disk, OS, driver and Ollama over SSH; list the profiles that fit."""
    if key is not None and not key.is_file():
        raise UserInputError(f"--key {key}: no such file")
    if sandbox or SANDBOX in (hosts or []):
        targets, urls = from_sandbox([h for h in hosts or [] if h != SANDBOX] or None)
        policy = "warn"  # sandbox hosts share the controller's RAM and disk (as apply)
    else:
        targets = from_inventory(inventory, user, key) if inventory else []
        targets += [from_argument(h, user, key) for h in hosts or []]
        policy = "refuse"
    if not targets:
        raise UserInputError("no hosts: give HOST arguments, -i INVENTORY, or --sandbox")
    profiles = all_profiles(profiles_dir)
    found = detect_all([probe_target(t) for t in targets])
    results = [(f, choose(f, profiles, policy)) for f in found]  # type: ignore[arg-type]
    emit(report.document(results), json_out, lambda c: console.out(safe(report.text(results)), end=""))
    return 0 if all(f.reachable for f in found) else 1
