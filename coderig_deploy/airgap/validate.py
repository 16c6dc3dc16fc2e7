"""`validate --airgapped` as a stage: probe every host, judge, write the auditor's report.

The run directory (`.coderig/runs/<UTC timestamp>/`) gets report.json, report.md and
junit.xml (reports package) and airgap.json with each host's raw probe.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.airgap.checks import Expected, airgap_checks
from coderig_deploy.airgap.host import HostOutcome, probe_host
from coderig_deploy.apply import new_run_dir
from coderig_deploy.atomicfile import write_atomic
from coderig_deploy.profiles import Profile
from coderig_deploy.project import TargetHost, spec_for
from coderig_deploy.reports import CheckResult, HostReport, RunReport, host_report, run_report, write_run
from coderig_deploy.smoke import expectations, host_args, write_pyz
from coderig_deploy.verify.runner import Target

AIRGAP_SCHEMA = "coderig-airgap/1"


@dataclass(frozen=True)
class ValidateRequest:
    profile: Profile
    targets: list[Target]
    expected: Expected
    runs_dir: Path = Path(".coderig/runs")


def host_checks(name: str, outcome: HostOutcome, request: ValidateRequest) -> HostReport:
    """One host's report: the air-gap checks first, then the smoke benchmark's."""
    leading = airgap_checks(outcome.probe, request.expected) if outcome.probe is not None else []
    if outcome.error:
        leading.append(CheckResult(name="reachable" if outcome.probe is None else "smoke_benchmark",
                                   status="fail", reason=outcome.error, source="validate"))
    return host_report(name, outcome.bench, expectations(request.profile), leading=leading)


def validate(request: ValidateRequest) -> tuple[Path, RunReport]:
    """Probe the hosts in parallel; write the run directory; return it and the report."""
    run_dir = new_run_dir(request.runs_dir)
    pyz = write_pyz(run_dir / "bench")
    api_url = spec_for(request.profile, [TargetHost(name="probe")]).api_url
    args = host_args(request.profile)
    with ThreadPoolExecutor(max_workers=min(8, len(request.targets))) as pool:
        outcomes = list(pool.map(lambda t: probe_host(t, api_url, pyz, args), request.targets))
    reports = [host_checks(t.name, o, request) for t, o in zip(request.targets, outcomes, strict=True)]
    report = run_report(reports, profile=request.profile.name, model=request.profile.model.tag)
    write_run(run_dir, report)
    write_atomic(run_dir / "airgap.json", json.dumps({
        "schema": AIRGAP_SCHEMA, "profile": request.profile.name, "model": request.expected.model,
        "manifest_digest": request.expected.digest, "registries": list(request.expected.registries),
        "hosts": {t.name: {"probe": o.probe, "error": o.error} for t, o in zip(request.targets, outcomes,
                                                                              strict=True)},
    }, indent=2) + "\n")
    return run_dir, report
