"""The fleet view of a run: each host's outcome, and how many hosts share each outcome and reason."""

from __future__ import annotations

from coderig_deploy.reports.model import Aggregate, HostReport, ReasonGroup

OUTCOMES = ("pass", "warn", "fail", "unreachable")
COMMAND_LINE = "given on the command line"


def outcome(host: HostReport) -> str:
    """pass | warn | fail, or unreachable when apply never reached the host."""
    return "unreachable" if host.status == "unreachable" else host.verdict


def reason_key(host: HostReport) -> str:
    """A short reason shared by hosts that failed the same way: the provisioning status, with the
    role for a failed task (`failed in preflight`, `unreachable`, `timeout`), else the names of
    the checks that did not pass."""
    if host.status == "failed" and host.failed_role:
        return f"failed in {host.failed_role}"
    if host.status and host.status != "ok":  # unreachable, timeout: where it happened does not group them
        return host.status
    names = [c.name for c in host.checks if c.status in ("warn", "fail")]
    return ", ".join(dict.fromkeys(names)) or "no result came back from the host"


def aggregate(hosts: list[HostReport]) -> Aggregate:
    """Counts per outcome and the non-passing hosts grouped by (outcome, reason)."""
    counts = {name: 0 for name in OUTCOMES}
    groups: dict[tuple[str, str], list[str]] = {}
    for host in hosts:
        kind = outcome(host)
        counts[kind] += 1
        if kind != "pass":
            groups.setdefault((kind, reason_key(host)), []).append(host.host)
    order = {name: i for i, name in enumerate(OUTCOMES)}
    ranked = sorted(groups.items(), key=lambda g: (order[g[0][0]], -len(g[1]), g[0][1]))
    by_reason = [ReasonGroup(outcome=kind, reason=reason, hosts=names)  # type: ignore[arg-type]
                 for (kind, reason), names in ranked]
    return Aggregate(counts=counts, by_reason=by_reason)


def profile_cell(host: HostReport) -> str:
    """`profile (why)` for the fleet table."""
    if host.profile is None:
        return "-"
    return f"{host.profile} ({host.profile_reason or COMMAND_LINE})"
