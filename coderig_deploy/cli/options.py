"""Options that several commands share, declared once so their help and limits agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProfileOpt = Annotated[str, typer.Option("--profile", metavar="NAME|FILE", help="Profile name or path to a profile YAML")]
HostsArg = Annotated[list[str] | None, typer.Argument(metavar="HOST", help="[user@]host[:port], localhost, or sandbox", show_default=False)]
InventoryOpt = Annotated[Path | None, typer.Option("-i", "--inventory", metavar="FILE", help="Ansible inventory")]
UserOpt = Annotated[str | None, typer.Option("--user", metavar="USER", help="SSH user for hosts given without one")]
KeyOpt = Annotated[Path | None, typer.Option("--key", metavar="FILE", help="SSH private key file")]
ForksOpt = Annotated[int, typer.Option("--forks", metavar="N", help="Hosts provisioned in parallel", min=1, max=200)]
AllowRebootOpt = Annotated[bool, typer.Option("--allow-reboot/--no-allow-reboot",
                                              help="Reboot a host to load a new driver")]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", help="Target the running sandbox lab")]
ModelRegistryOpt = Annotated[str | None, typer.Option("--model-registry", metavar="HOST:PORT", help="host:port of a model registry mirror")]
OllamaUrlOpt = Annotated[str | None, typer.Option("--ollama-url", metavar="URL", help="URL of the Ollama release archive")]
ProfilesDirOpt = Annotated[Path | None, typer.Option("--profiles-dir", metavar="DIR", help="Extra directory of profiles")]
