"""`apply` as a stage: render the project into a new run directory, run it, collect results.

The run directory (`.coderig/runs/<UTC timestamp>/` by default) is ansible-runner's
private data dir (see runner.py) and also holds `apply.json` (per-host results)
and the report files (`report.json`, `report.md`, `junit.xml`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from coderig_deploy import hostkeys, ollama_release, runner
from coderig_deploy.errors import UserInputError
from coderig_deploy.pins import unpinned_checks
from coderig_deploy.atomicfile import write_atomic
from coderig_deploy.bench.checks import Check
from coderig_deploy.profiles import Profile
from coderig_deploy.project import (
    BenchmarkSeam,
    ProjectSpec,
    RenderOptions,
    TargetHost,
    spec_for,
)
from coderig_deploy.render import render_fleet
from coderig_deploy.reports import (
    CheckResult,
    HostReport,
    host_report,
    run_report,
    write_run,
)
from coderig_deploy.reports.fleet import COMMAND_LINE
from coderig_deploy.results import HostResult, exit_code, host_results
from coderig_deploy.smoke import PYZ_NAME, expectations, host_args, write_pyz

APPLY_SCHEMA = "coderig-apply/1"
LOCK_LEASE_MARGIN_S = 300  # the host lock outlives a timed-out run by this much at most


@dataclass(frozen=True)
class ProfileGroup:
    """The hosts of a fleet that share one profile, their render options and why each got it."""

    profile: Profile
    hosts: list[TargetHost]
    options: RenderOptions = field(default_factory=RenderOptions)
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApplyRequest:
    profile: Profile
    hosts: list[TargetHost]
    options: RenderOptions = field(default_factory=RenderOptions)
    runs_dir: Path = Path(".coderig/runs")
    check: bool = False
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    extra_files: dict[str, Path] = field(default_factory=dict)
    benchmark: bool = True  # run the smoke benchmark at the end (issue: proven, not just installed)
    accept_new_host_keys: bool = False  # record unknown hosts' keys; a changed key is still refused
    timeout: int | None = None  # seconds for the whole run; unfinished hosts end as "timeout"
    groups: list[ProfileGroup] = field(default_factory=list)  # a fleet: profile per host (else `profile`)
    unmatched: dict[str, str] = field(default_factory=dict)  # hosts no profile fits -> why; left untouched
    invocation: dict[str, Any] | None = None  # the command line's options, kept for --retry-failed
    retry_of: Path | None = None  # the run this one retries

    def profile_groups(self) -> list[ProfileGroup]:
        return self.groups or [ProfileGroup(self.profile, self.hosts, self.options)]


@dataclass(frozen=True)
class ApplyResult:
    run_dir: Path
    status: str
    rc: int
    seconds: float
    hosts: list[HostResult]
    spec: ProjectSpec
    reports: list[HostReport] = field(default_factory=list)  # verdict per host: provision + benchmark checks
    host_keys_recorded: list[str] = field(default_factory=list)  # by --accept-new-host-keys: "file: host type"
    specs: list[ProjectSpec] = field(default_factory=list)  # one per profile of the fleet
    release_checks: dict[str, ollama_release.ReleaseCheck] = field(default_factory=dict)  # per profile

    @property
    def profile_label(self) -> str:
        return ", ".join(s.profile for s in self.specs) or self.spec.profile

    @property
    def release_check(self) -> ollama_release.ReleaseCheck | None:
        """The first profile's check of its Ollama pin against the release's sha256sum.txt."""
        return next(iter(self.release_checks.values()), None)

    @property
    def exit_code(self) -> int:
        if self.status == "canceled":
            return 130
        verdict_failed = any(r.verdict == "fail" for r in self.reports)
        return max(exit_code(self.hosts), 1 if verdict_failed else 0)


def new_run_dir(runs_dir: Path) -> Path:
    """A fresh directory named by the UTC time (suffixed when two runs share a second)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(100):
        candidate = runs_dir / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate.resolve()
        except FileExistsError:
            continue
        except OSError as exc:  # read-only, not a directory, no permission
            raise UserInputError(f"--runs-dir {runs_dir}: cannot create a run directory: {exc.strerror}") from None
    raise FileExistsError(f"too many runs in {runs_dir} within one second")


def apply(request: ApplyRequest, on_event: runner.EventHandler | None = None) -> ApplyResult:
    """Render, run and record one apply; raises CoderigError only for bad input or environment.

    A fleet (request.groups) renders one project with a group per profile and runs it
    once; hosts in request.unmatched are not in it and are reported as not run."""
    groups = request.profile_groups()
    specs = [spec_for(g.profile, g.hosts, _with_benchmark(request, g)) for g in groups]
    releases = release_checks(specs)
    files = render_fleet(specs)
    runner.require_ansible_playbook()
    run_dir = new_run_dir(request.runs_dir)
    extra_files = dict(request.extra_files)
    if any(s.benchmark is not None for s in specs) and all(g.options.benchmark is None for g in groups):
        extra_files[f"files/{PYZ_NAME}"] = write_pyz(run_dir / "bench")
    started = time.monotonic()
    hosts = [h for g in groups for h in g.hosts]
    known_before = hostkeys.snapshot(hosts)
    outcome = runner.run(runner.RunRequest(
        run_dir=run_dir, files=files, check=request.check, limit=request.limit, tags=request.tags,
        forks=specs[0].forks, extra_files=extra_files, extravars=run_extravars(run_dir, request.timeout),
        accept_new_host_keys=request.accept_new_host_keys, timeout=request.timeout,
    ), on_event)
    results = host_results([h.name for h in hosts], outcome.stats, outcome.events,
                           canceled=outcome.status == "canceled",
                           timeout=request.timeout if outcome.status == "timeout" else None)
    targets = {h.name: h for h in hosts}
    for h in results:
        if h.status == "unreachable" and h.reason and h.host in targets:
            h.reason = hostkeys.explain(h.reason, targets[h.host])
    reports = host_reports(results, groups, specs, releases,
                           container_checks(groups, specs, results) if not request.check else {})
    results += [HostResult(host=name, status="not run", reason=why) for name, why in request.unmatched.items()]
    reports += [unmatched_report(name, why) for name, why in request.unmatched.items()]
    result = ApplyResult(run_dir=run_dir, status=outcome.status, rc=outcome.rc,
                         seconds=round(time.monotonic() - started, 2), hosts=results, spec=specs[0],
                         reports=reports, host_keys_recorded=hostkeys.recorded(known_before, hosts), specs=specs,
                         release_checks=releases)
    write_records(result, request)
    return result


def release_checks(specs: list[ProjectSpec]) -> dict[str, ollama_release.ReleaseCheck]:
    """Each profile's Ollama pin checked against the release's published list (one fetch
    per distinct pin: a fleet's profiles usually share it); none for a --bundle run."""
    done: dict[tuple[str, str | None, str | None], ollama_release.ReleaseCheck | None] = {}
    checks = {}
    for spec in specs:
        key = (spec.ollama_version, spec.ollama_archive_url, spec.ollama_archive_checksum)
        if key not in done:
            done[key] = ollama_release.check_spec(spec)
        if done[key] is not None:
            checks[spec.profile] = done[key]
    return checks  # type: ignore[return-value]


def container_checks(groups: list[ProfileGroup], specs: list[ProjectSpec],
                     results: list[HostResult]) -> dict[str, list[Check]]:
    """For each docker-runtime host that provisioned: its Ollama container as the docker SDK
    sees it (digest, GPU request, environment, loopback port, health, restarts)."""
    from coderig_deploy.verify.container import check_provisioned

    passed = {h.host for h in results if h.passed}
    checks: dict[str, list[Check]] = {}
    for group, spec in zip(groups, specs, strict=True):
        hosts = [h for h in group.hosts if h.name in passed]
        if spec.container is not None and hosts:
            checks.update(check_provisioned(hosts, spec.container, spec.bundle.image_id if spec.bundle else None))
    return checks


def host_reports(results: list[HostResult], groups: list[ProfileGroup], specs: list[ProjectSpec],
                 releases: dict[str, ollama_release.ReleaseCheck] | None = None,
                 containers: dict[str, list[Check]] | None = None) -> list[HostReport]:
    """Each host's verdict against its own profile's expectations (and, on a docker runtime,
    its container's checks); in a fleet the first check says which profile and why."""
    by_host = {h.name: (g, s) for g, s in zip(groups, specs) for h in g.hosts}
    reports = []
    for h in results:
        if h.status == "not run":  # outside --limit: in apply.json, not in the report (it did not fail)
            continue
        group, spec = by_host.get(h.host, (groups[0], specs[0]))
        reason = group.reasons.get(h.host)
        release = (releases or {}).get(spec.profile)
        leading = [provision_check(h), *unpinned_checks(spec.unpinned), *([release.check_result()] if release else [])]
        if reason is not None:
            leading.insert(0, CheckResult(name="profile", status="pass", reason=reason, source="apply",
                                          measured=group.profile.name))
        report = host_report(h.host, h.facts.get("smoke_benchmark_result"), expectations(group.profile),
                             verify=(containers or {}).get(h.host), leading=leading)
        reports.append(report.model_copy(update={**fleet_fields(h, group.profile.name),
                                                  "profile_reason": reason or COMMAND_LINE}))
    return reports


def unmatched_report(host: str, reason: str) -> HostReport:
    """A host no profile fits (or that could not be detected): failed, left untouched."""
    check = CheckResult(name="profile", status="fail", reason=f"{reason}; left untouched", source="apply")
    return HostReport(host=host, verdict="fail", reasons=[f"profile: {check.reason}"], checks=[check],
                      profile=None, profile_reason=reason, status="not run", failure=f"no profile: {reason}")


def run_extravars(run_dir: Path, timeout: int | None) -> dict[str, object]:
    """What the playbook learns about this run from the controller: its id (per-run pull
    progress, the host lock's owner), this process (a lock whose process is gone is
    stale) and, with a time limit, the host lock's lease."""
    extravars: dict[str, object] = {"coderig_run_dir": str(run_dir), "coderig_run_id": run_dir.name,
                                    "coderig_controller_pid": os.getpid()}
    if timeout is not None:
        extravars["host_lock_lease"] = timeout + LOCK_LEASE_MARGIN_S
    return extravars


def _with_benchmark(request: ApplyRequest, group: ProfileGroup) -> RenderOptions:
    """The render options with the smoke benchmark seam filled in, unless turned off or given."""
    options = group.options
    if not request.benchmark or options.benchmark is not None:
        return options
    probe = spec_for(group.profile, group.hosts, options)
    seam = BenchmarkSeam(program=PYZ_NAME, args=[*host_args(group.profile), "--url", probe.api_url])
    return options.model_copy(update={"benchmark": seam})


def apply_document(result: ApplyResult, request: ApplyRequest) -> dict[str, object]:
    """apply.json: the run and each host's result (no secrets: key paths only)."""
    return {
        "schema": APPLY_SCHEMA,
        "profile": result.profile_label,
        "profiles": {r.host: r.profile for r in result.reports},
        "model": result.spec.model_tag,
        "variant": result.spec.model_variant,
        "check": request.check,
        "limit": request.limit,
        "tags": request.tags,
        "status": result.status,
        "rc": result.rc,
        "seconds": result.seconds,
        "timeout": request.timeout,
        "run_dir": str(result.run_dir),
        "accept_new_host_keys": request.accept_new_host_keys,
        "host_keys_recorded": result.host_keys_recorded,
        "ollama_release_check": (None if result.release_check is None else
                                 {"status": result.release_check.status, "detail": result.release_check.detail}),
        "hosts": [h.model_dump(mode="json") for h in result.hosts],
        "invocation": request.invocation,
        "retry_of": str(request.retry_of) if request.retry_of else None,
    }


def write_records(result: ApplyResult, request: ApplyRequest) -> None:
    write_atomic(result.run_dir / "apply.json", json.dumps(apply_document(result, request), indent=2) + "\n")
    models = ", ".join(dict.fromkeys(s.model_tag for s in result.specs)) or result.spec.model_tag
    index = write_editor_config(result.run_dir, request)
    write_run(result.run_dir, run_report(result.reports, profile=result.profile_label, model=models,
                                         editor_config=index))


def write_editor_config(run_dir: Path, request: ApplyRequest) -> str:
    """The editors' configuration for each host and its profile, in the run directory (the
    report links it)."""
    from coderig_deploy.editor.config import write_for_run
    from coderig_deploy.targets import as_argument

    groups = [(g.profile, [(h.name, None if h.connection == "local" else as_argument(h), h.key_file, h.known_hosts)
                           for h in g.hosts])
              for g in request.profile_groups()]
    return str(write_for_run(run_dir / "editor", groups).relative_to(run_dir))


def fleet_fields(host: HostResult, profile: str) -> dict[str, Any]:
    """What the fleet report shows of a host besides its checks: its profile, its provisioning
    outcome and the versions and models it ended with."""
    bench = host.facts.get("smoke_benchmark_result") or {}
    ollama = host.facts.get("ollama_summary") or {}
    driver = host.facts.get("nvidia_driver_summary") or {}
    models = host.facts.get("models_summary") or {}
    where = f"{host.failed_role}: " if host.failed_role else ""
    return {"profile": profile, "profile_reason": COMMAND_LINE, "status": host.status,
            "failure": f"{where}{' '.join(host.reason.split())}" if host.reason and not host.passed else None,
            "failed_role": host.failed_role,
            "ollama_version": str(bench.get("ollama_version") or ollama.get("version") or "") or None,
            "driver_version": str(driver.get("loaded_version") or "") or None,
            "models": [str(m) for m in (models.get("variant") or bench.get("model"),) if m]}


def provision_check(host: HostResult) -> CheckResult:
    """The provisioning outcome as the first check of the host's report."""
    where = f"{host.failed_role}: " if host.failed_role else ""
    reason = (f"{where}{host.reason}" if host.reason else
              f"{host.ok} ok, {host.changed} changed in {host.seconds:.1f} s")
    status: Literal["pass", "fail"] = "pass" if host.passed else "fail"
    return CheckResult(name="provision", status=status, reason=reason, source="apply",
                       measured={"status": host.status, "changed": host.changed, "failed": host.failed,
                                 "unreachable": host.unreachable})
