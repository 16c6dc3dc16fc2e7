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
from typing import Literal

from coderig_deploy import hostkeys, ollama_release, runner
from coderig_deploy.errors import UserInputError
from coderig_deploy.pins import unpinned_checks
from coderig_deploy.atomicfile import write_atomic
from coderig_deploy.profiles import Profile
from coderig_deploy.project import (
    BenchmarkSeam,
    ProjectSpec,
    RenderOptions,
    TargetHost,
    spec_for,
)
from coderig_deploy.render import render_project
from coderig_deploy.reports import (
    CheckResult,
    HostReport,
    host_report,
    run_report,
    write_run,
)
from coderig_deploy.results import HostResult, exit_code, host_results
from coderig_deploy.smoke import PYZ_NAME, expectations, host_args, write_pyz

APPLY_SCHEMA = "coderig-apply/1"
LOCK_LEASE_MARGIN_S = 300  # the host lock outlives a timed-out run by this much at most


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
    release_check: ollama_release.ReleaseCheck | None = None  # the pin against the release's sha256sum.txt

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
    """Render, run and record one apply; raises CoderigError only for bad input or environment."""
    spec = spec_for(request.profile, request.hosts, _with_benchmark(request))
    release = ollama_release.check_spec(spec)
    files = render_project(spec)
    runner.require_ansible_playbook()
    run_dir = new_run_dir(request.runs_dir)
    extra_files = dict(request.extra_files)
    if spec.benchmark is not None and request.options.benchmark is None:
        extra_files[f"files/{PYZ_NAME}"] = write_pyz(run_dir / "bench")
    started = time.monotonic()
    known_before = hostkeys.snapshot(request.hosts)
    outcome = runner.run(runner.RunRequest(
        run_dir=run_dir, files=files, check=request.check, limit=request.limit, tags=request.tags,
        forks=spec.forks, extra_files=extra_files, extravars=run_extravars(run_dir, request.timeout),
        accept_new_host_keys=request.accept_new_host_keys, timeout=request.timeout,
    ), on_event)
    results = host_results([h.name for h in spec.hosts], outcome.stats, outcome.events,
                           canceled=outcome.status == "canceled",
                           timeout=request.timeout if outcome.status == "timeout" else None)
    targets = {h.name: h for h in request.hosts}
    for h in results:
        if h.status == "unreachable" and h.reason and h.host in targets:
            h.reason = hostkeys.explain(h.reason, targets[h.host])
    exp = expectations(request.profile)
    reports = [host_report(h.host, h.facts.get("smoke_benchmark_result"), exp,
                           leading=[provision_check(h), *unpinned_checks(spec.unpinned),
                                    *([release.check_result()] if release else [])]) for h in results]
    result = ApplyResult(run_dir=run_dir, status=outcome.status, rc=outcome.rc,
                         seconds=round(time.monotonic() - started, 2), hosts=results, spec=spec, reports=reports,
                         host_keys_recorded=hostkeys.recorded(known_before, request.hosts), release_check=release)
    write_records(result, request)
    return result


def run_extravars(run_dir: Path, timeout: int | None) -> dict[str, object]:
    """What the playbook learns about this run from the controller: its id (per-run pull
    progress, the host lock's owner), this process (a lock whose process is gone is
    stale) and, with a time limit, the host lock's lease."""
    extravars: dict[str, object] = {"coderig_run_dir": str(run_dir), "coderig_run_id": run_dir.name,
                                    "coderig_controller_pid": os.getpid()}
    if timeout is not None:
        extravars["host_lock_lease"] = timeout + LOCK_LEASE_MARGIN_S
    return extravars


def _with_benchmark(request: ApplyRequest) -> RenderOptions:
    """The render options with the smoke benchmark seam filled in, unless turned off or given."""
    options = request.options
    if not request.benchmark or options.benchmark is not None:
        return options
    probe = spec_for(request.profile, request.hosts, options)
    seam = BenchmarkSeam(program=PYZ_NAME, args=[*host_args(request.profile), "--url", probe.api_url])
    return options.model_copy(update={"benchmark": seam})


def apply_document(result: ApplyResult, request: ApplyRequest) -> dict[str, object]:
    """apply.json: the run and each host's result (no secrets: key paths only)."""
    return {
        "schema": APPLY_SCHEMA,
        "profile": result.spec.profile,
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
    }


def write_records(result: ApplyResult, request: ApplyRequest) -> None:
    write_atomic(result.run_dir / "apply.json", json.dumps(apply_document(result, request), indent=2) + "\n")
    write_run(result.run_dir, run_report(result.reports, profile=result.spec.profile, model=result.spec.model_tag))


def provision_check(host: HostResult) -> CheckResult:
    """The provisioning outcome as the first check of the host's report."""
    where = f"{host.failed_role}: " if host.failed_role else ""
    reason = (f"{where}{host.reason}" if host.reason else
              f"{host.ok} ok, {host.changed} changed in {host.seconds:.1f} s")
    status: Literal["pass", "fail"] = "pass" if host.passed else "fail"
    return CheckResult(name="provision", status=status, reason=reason, source="apply",
                       measured={"status": host.status, "changed": host.changed, "failed": host.failed,
                                 "unreachable": host.unreachable})
