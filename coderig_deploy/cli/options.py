"""Options that several commands share, declared once so their help and limits agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProfileOpt = Annotated[str, typer.Option("--profile", help="Profile name or path to a profile YAML")]
HostsArg = Annotated[list[str] | None, typer.Argument(help="[user@]host[:port], localhost, or sandbox")]
InventoryOpt = Annotated[Path | None, typer.Option("-i", "--inventory", help="Ansible inventory")]
UserOpt = Annotated[str | None, typer.Option("--user", help="SSH user for hosts given without one")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="SSH private key file")]
ForksOpt = Annotated[int | None, typer.Option(
    "--forks", help="Hosts provisioned in parallel [default: one per host, at most 10 per controller CPU]",
    min=1, max=200)]
AllowRebootOpt = Annotated[bool, typer.Option("--allow-reboot/--no-allow-reboot",
                                              help="Reboot a host to load a new driver")]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", help="Target the running sandbox lab")]
ModelRegistryOpt = Annotated[str | None, typer.Option("--model-registry", help="host:port of a model registry mirror")]
OllamaUrlOpt = Annotated[str | None, typer.Option("--ollama-url", help="URL of the Ollama release archive")]
ProfilesDirOpt = Annotated[Path | None, typer.Option("--profiles-dir", help="Extra directory of profiles")]
OllamaSha256Opt = Annotated[str | None, typer.Option(
    "--ollama-sha256", help="Pin: sha256:<hex> the Ollama archive must have (needed for a plain-HTTP --ollama-url)")]
ModelDigestOpt = Annotated[str | None, typer.Option(
    "--model-digest", help="Pin: sha256:<hex> of the model's manifest in the registry mirror")]
AllowUnpinnedOpt = Annotated[bool, typer.Option(
    "--allow-unpinned", help="Accept plain-HTTP sources without a pin (each is a warning in the report)")]
AcceptNewHostKeysOpt = Annotated[bool, typer.Option(
    "--accept-new-host-keys",
    help="Record the host key of a host not yet in known_hosts on first connect (trust on first use; "
         "logged in apply.json). A changed key is always refused.")]
BundleOpt = Annotated[Path | None, typer.Option(
    "--bundle", help="Install from this offline bundle (verified on the controller first; nothing is downloaded)")]
AllowedSignersOpt = Annotated[Path | None, typer.Option(
    "--allowed-signers", help="OpenSSH allowed_signers file: the bundle must carry a valid signature")]
PowerLimitOpt = Annotated[float | None, typer.Option(
    "--power-limit", metavar="W", min=5, max=2000,
    help="A laptop GPU's power limit as its maker set it, W (`nvidia-smi -q -d POWER`: Max Power Limit) "
         "[default: the top of its range]")]
