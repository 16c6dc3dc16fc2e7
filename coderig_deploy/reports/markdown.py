"""report.md: a table a person pastes into a ticket, then the reasons per host."""

from __future__ import annotations

from coderig_deploy.reports.build import summary_row
from coderig_deploy.reports.fleet import outcome, profile_cell
from coderig_deploy.reports.model import HostReport, RunReport
from coderig_deploy.safetext import safe


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: RunReport) -> str:
    """Render the run as Markdown (deterministic for a given report)."""
    lines = [f"# coderig-deploy run: {report.verdict.upper()}", "",
             f"- profile: {report.profile or '-'}", f"- model: {report.model or '-'}",
             f"- created: {report.created_at} (coderig-deploy {report.tool_version})"]
    if report.editor_config:
        lines.append(f"- editor configuration: [{report.editor_config}]({report.editor_config})")
    lines.append("")
    rows = [fleet_row(h) for h in report.hosts]
    header = list(rows[0]) if rows else ["host", "verdict"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(r[k]) for k in header) + " |" for r in rows]
    lines += _aggregate(report)
    for host in report.hosts:
        lines += ["", f"## {host.host}: {host.verdict}", ""]
        if host.profile is not None:
            lines += [f"- profile: {_cell(profile_cell(host))}"]
        lines += [f"- **{c.status}** `{c.name}`: {_cell(c.reason)}" for c in host.checks]
    return safe("\n".join(lines)) + "\n"  # host text printed, never obeyed, by `cat report.md`


def fleet_row(h: HostReport) -> dict[str, str]:
    """report.md's row: the summary columns, then the profile and why, and the reason of failure."""
    row = summary_row(h)
    row["verdict"] = outcome(h)
    reason = h.failure or "; ".join(h.reasons)
    return {**row, "profile (why)": profile_cell(h), "reason": reason or "-"}


def _aggregate(report: RunReport) -> list[str]:
    """`N pass, N warn, ...` then one line per (outcome, reason) with its hosts."""
    if report.aggregate is None:
        return []
    counts = ", ".join(f"{n} {kind}" for kind, n in report.aggregate.counts.items())
    lines = ["", f"**{len(report.hosts)} hosts:** {counts}", ""]
    lines += [f"- {g.outcome}, {_cell(g.reason)}: {len(g.hosts)} ({', '.join(g.hosts)})"
              for g in report.aggregate.by_reason]
    return lines


def parse_markdown_table(text: str) -> list[dict[str, str]]:
    """Read the first table of a report.md back as rows keyed by header."""
    table = [line for line in text.splitlines() if line.startswith("|")]
    if len(table) < 2:
        return []
    split = [[c.strip().replace("\\|", "|") for c in _split_row(line)] for line in table]
    header, body = split[0], [r for r in split[2:]]
    return [dict(zip(header, row)) for row in body]


def _split_row(line: str) -> list[str]:
    cells, cur, escaped = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "|" and not escaped:
            cells.append(cur)
            cur = ""
        else:
            cur += ch
        escaped = ch == "\\"
    return cells + [cur]
