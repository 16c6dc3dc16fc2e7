"""`coderig-deploy sandbox up|list|down|inventory`: throwaway local workstations."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit, err_console
from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox import HostSpec, Lab
from coderig_deploy.sandbox.state import LABS_ROOT, STATE_FILE, HostState

sandbox_app = typer.Typer(
    help="Boot, list and remove sandbox hosts (local Debian hosts with simulated GPUs). "
    "Needs root. Each user has an own lab in /var/lib/coderig/sandbox/USER (USER = $SUDO_USER "
    "under sudo); $CODERIG_SANDBOX_HOME overrides the directory.",
    no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _lab() -> Lab:
    _note_legacy_lab()
    return Lab(progress=lambda message: err_console.print(escape(message), style="dim"))


def _note_legacy_lab() -> None:
    """Labs used to live directly in LABS_ROOT, shared by every user; say how to remove one."""
    if (LABS_ROOT / STATE_FILE).is_file() and "CODERIG_SANDBOX_HOME" not in os.environ:
        err_console.print(escape(
            f"note: a shared lab from an older version is still in {LABS_ROOT}; remove it with "
            f"`CODERIG_SANDBOX_HOME={LABS_ROOT} coderig-deploy sandbox down`"), style="yellow")


def host_row(lab: Lab, host: HostState) -> dict[str, Any]:
    gpus = f"{host.gpu.count}x {host.gpu.slug}" if host.gpu.count else "none"
    if host.gpu.count and not host.gpu.driver_installed:
        gpus += " (no driver)"
    return {"name": host.name, "ip": host.ip, "gpus": gpus, "gpu": host.gpu.slug,
            "gpu_count": host.gpu.count, "driver_installed": host.gpu.driver_installed,
            "state": host.status if lab.is_up(host) else "down (crashed? run `sandbox down`)",
            "boot_seconds": host.boot_seconds,
            "ssh": f"ssh -i {lab.key} -o UserKnownHostsFile={lab.known_hosts} root@{host.ip}"}


def _render(rows: list[dict[str, Any]]) -> Any:
    def render(console: Console) -> None:
        table = Table()
        for column in ("host", "IP", "GPUs", "state", "boot s"):
            table.add_column(column, overflow="fold")
        for row in rows:
            boot = f"{row['boot_seconds']:.1f}" if row["boot_seconds"] is not None else "-"
            table.add_row(row["name"], row["ip"], row["gpus"], row["state"], boot)
        console.print(table if rows else "no sandbox hosts")
    return render


@sandbox_app.command("up")
def up_cmd(
    hosts: Annotated[int, typer.Option(help="How many hosts to add", min=1, max=50)] = 1,
    gpu: Annotated[str | None, typer.Option(help="Catalog GPU slug, e.g. rtx-4090")] = None,
    gpu_count: Annotated[int | None, typer.Option(help="Cards per host (default 1 with --gpu); 0 = no GPU", min=0,
                                                     max=8)] = None,
    name: Annotated[str, typer.Option(help="Host name prefix (hosts are PREFIX1, PREFIX2...)")
                    ] = "ws",
    no_driver: Annotated[bool, typer.Option(help="Cards visible in lspci, driver not installed")
                         ] = False,
    docker: Annotated[bool, typer.Option(help="Boot with what Docker Engine needs (ollama.runtime: docker)")
                      ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Add hosts to the lab (creating it) and wait until each runs systemd fully."""
    lab = _lab()
    specs = [HostSpec(gpu=gpu, count=gpu_count, driver_installed=not no_driver,
                      docker=docker)] * hosts
    new = lab.up(specs, prefix=name)
    emit([host_row(lab, h) for h in new], json_out, _render([host_row(lab, h) for h in new]))


@sandbox_app.command("list")
def list_cmd(json_out: JsonOpt = False) -> None:
    """Every host of your lab: name, IP, GPUs, state."""
    lab = _lab()
    rows = [host_row(lab, h) for h in lab.hosts()]
    emit(rows, json_out, _render(rows))


@sandbox_app.command("down")
def down_cmd(names: Annotated[list[str] | None, typer.Argument(
        help="Hosts to remove; none = your whole lab (other users' labs are never touched)")
        ] = None, json_out: JsonOpt = False) -> None:
    """Stop and remove hosts of your lab, leaving no process, mount, namespace, link or cgroup."""
    lab = _lab()
    removed = lab.down(names or None)
    message = f"removed {len(removed)} host(s) from {lab.home}" + (f": {', '.join(removed)}" if removed else "")
    emit({"lab": str(lab.home), "removed": removed}, json_out, lambda _console: err_console.print(escape(message)))


@sandbox_app.command("inventory")
def inventory_cmd(json_out: JsonOpt = False) -> None:
    """Your lab as an Ansible inventory (YAML; with the SSH key and known_hosts)."""
    lab = _lab()
    if not lab.inventory_path.is_file():
        raise EnvironmentProblem(f"no sandbox lab at {lab.home}: run `sandbox up` first")
    text = lab.inventory_path.read_text()
    emit(yaml.safe_load(text), json_out, lambda console: console.out(text, end=""))
