"""What detect prints: per host what was found and the profiles that fit (pure text,
lines of at most 80 columns; host text is never read as markup)."""

from __future__ import annotations

import textwrap
from typing import Any

from coderig_deploy.detect.choose import Choice, describe_gpus
from coderig_deploy.detect.facts import HostFacts, pre_turing

WIDTH = 80


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False) or [indent]


def host_lines(facts: HostFacts, choice: Choice) -> list[str]:
    """One host's block."""
    if not facts.reachable:
        return [facts.host, *_wrap(f"unreachable: {facts.error}")]
    lines = [facts.host]
    lines += _wrap(f"OS: {facts.os or '-'}; driver: {facts.driver_version or 'none loaded'}")
    for gpu in facts.gpus:
        state = "" if gpu.usable else ", NOT seen by the driver"
        vram = f"{gpu.vram_mib} MiB" if gpu.vram_mib else "memory unknown"
        pci = f"10de:{gpu.pci_device_id}" if gpu.pci_device_id else "-"
        known = gpu.slug or ("pre-Turing, not in the catalog" if gpu.pci_device_id and pre_turing(gpu.pci_device_id)
                             else "not in the catalog")
        lines += _wrap(f"GPU {gpu.bus_id or '-'} {pci}: {gpu.name} ({known}, "
                       f"{vram}, from {gpu.source}{state})")
    if not facts.gpus:
        lines += _wrap("GPU: no NVIDIA card found")
    ram = f"{facts.ram_mib / 1024:.1f} GiB" if facts.ram_mib else "-"
    disk = f"{facts.disk_free_gib:g} GiB free" if facts.disk_free_gib is not None else "free disk -"
    lines += _wrap(f"RAM {ram}; {disk} at {facts.models_dir or '-'}")
    models = ", ".join(facts.models) if facts.models else ("none" if facts.models == [] else "server not answering")
    lines += _wrap(f"Ollama: {facts.ollama_version or 'not installed'}; models: {models}")
    if facts.unknown_pci_ids:
        lines += _wrap(f"unknown PCI ids (not guessed): {', '.join(facts.unknown_pci_ids)}")
    lines += _wrap(f"summary: {describe_gpus(facts)}")
    if choice.candidates:
        lines.append(f"  {'profiles that fit, best first:':<34} {'GPUs':>4} {'VRAM MiB':>10}  tok/s plan / expected")
        for c in choice.candidates:
            warn = f"  ({', '.join(c.warnings)})" if c.warnings else ""
            lines.append(f"    {c.profile[:32]:<32} {c.gpus_used:>4} {c.vram_mib:>10}  "
                         f"{c.plan_tok_s:>5.1f} / {c.expected_tok_s:g}")
            if warn:
                lines += _wrap(f"warning: {', '.join(c.warnings)}", "      ")
    lines += _wrap(f"auto picks: {choice.profile}" if choice.profile else f"auto picks none: {choice.reason}")
    return lines


def text(results: list[tuple[HostFacts, Choice]]) -> str:
    return "\n\n".join("\n".join(host_lines(f, c)) for f, c in results) + "\n"


def document(results: list[tuple[HostFacts, Choice]]) -> list[dict[str, Any]]:
    """--json: each host's facts, the fitting profiles and auto's choice with its reason."""
    return [{**facts.model_dump(mode="json"), "unknown_pci_ids": facts.unknown_pci_ids,
             "pre_turing_pci_ids": facts.pre_turing_pci_ids,
             "fits": [{"profile": c.profile, "gpus_used": c.gpus_used, "vram_mib": c.vram_mib,
                       "plan_decode_tok_s": c.plan_tok_s, "expected_decode_tok_s": c.expected_tok_s,
                       "warnings": c.warnings} for c in choice.candidates],
             "auto": {"profile": choice.profile, "reason": choice.reason}} for facts, choice in results]
