"""`coderig-deploy gpus` and `coderig-deploy models`: what the catalog knows, by the names plan takes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coderig_deploy.catalog import load_catalog
from coderig_deploy.cli import app
from coderig_deploy.cli.output import emit

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command(name="gpus")
def gpus_cmd(json_out: JsonOpt = False) -> None:
    """Every GPU slug `--gpu` and profiles accept, with its memory and bandwidth."""
    rows = [{"slug": g.slug, "name": g.name, "vram_mib": g.vram_mib, "bandwidth_gbs": g.bandwidth_gbs,
             "architecture": g.architecture, "compute_capability": g.compute_capability, "sm_count": g.sm_count,
             "boost_clock_mhz": g.boost_clock_mhz, "board_power_w": g.board_power_w,
             "board_power_min_w": g.board_power_min_w or g.board_power_w, "power_w": g.power_label,
             "pci_device_id": g.pci_device_id, "pci_device_ids": list(g.pci_device_ids), "source": g.source}
            for g in sorted(load_catalog().gpus.values(), key=lambda g: (g.vram_mib, g.slug))]

    def render(console: Console) -> None:
        table = Table(box=None, pad_edge=False)
        for col in ("slug", "VRAM MiB", "GB/s", "SMs", "MHz", "W", "cc", "arch"):
            table.add_column(col, justify="left" if col in ("slug", "arch") else "right", overflow="fold")
        for r in rows:
            table.add_row(r["slug"], str(r["vram_mib"]), f"{r['bandwidth_gbs']:.0f}", str(r["sm_count"]),
                          f"{r['boost_clock_mhz']:.0f}", r["power_w"], r["compute_capability"], r["architecture"])
        console.print(table)

    emit(rows, json_out, render)


@app.command(name="models")
def models_cmd(json_out: JsonOpt = False) -> None:
    """Every model `--model` and profiles accept: family, sizes, default quantization, trained context."""
    catalog = load_catalog()
    rows = []
    for spec in sorted(catalog.models.values(), key=lambda m: (m.ollama_name, m.params_b)):
        infix = "" if spec.tag_infix == "-" else f"-{spec.tag_infix}"
        quant = catalog.quants[spec.default_quant].ollama_tag
        rows.append({"tag": f"{spec.ollama_name}:{spec.ollama_size}", "params_b": spec.params_b,
                     "default_quant": quant, "example": f"{spec.ollama_name}:{spec.ollama_size}{infix}-{quant}",
                     "trained_ctx": spec.trained_ctx})
    quants = [q.ollama_tag for q in catalog.quants.values()]

    def render(console: Console) -> None:
        table = Table()
        for col in ("tag", "params (B)", "default quant", "full tag", "trained ctx"):
            table.add_column(col, justify="right" if col in ("params (B)", "trained ctx") else "left",
                             overflow="fold")
        for r in rows:
            table.add_row(r["tag"], f"{r['params_b']:g}", r["default_quant"], r["example"], str(r["trained_ctx"]))
        console.print(table)
        console.print(f"quantizations: {', '.join(quants)}")

    emit({"models": rows, "quantizations": quants}, json_out, render)
