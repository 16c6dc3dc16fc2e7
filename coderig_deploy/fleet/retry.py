"""`apply --retry-failed RUN_DIR`: which hosts of a past run to run again, and with what.

An apply records its command line's options (`invocation`) in the run directory's
apply.json. A retry re-runs them for exactly the hosts that did not pass: provisioning
failed, unreachable, timed out, canceled or stopped for a reboot, or the benchmark's
verdict failed. Hosts that passed, and hosts outside the run's --limit ("not run"),
are left alone. Pure apart from reading the run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coderig_deploy.apply import APPLY_SCHEMA
from coderig_deploy.errors import UserInputError

RETRY_STATUSES = ("failed", "unreachable", "timeout", "canceled", "reboot required")


class Invocation(BaseModel):
    """The options of one `apply`, enough to run it again (paths absolute, no secrets)."""

    model_config = ConfigDict(extra="forbid")

    profile: str | None = None  # None: each host's from the inventory (coderig_profile)
    profiles_dir: str | None = None
    hosts: list[str] = Field(default_factory=list)
    inventory: str | None = None
    user: str | None = None
    key: str | None = None
    sandbox: bool = False
    forks: int | None = None  # None: automatic (forks.auto_forks)
    allow_reboot: bool = False
    model_registry: str | None = None
    ollama_url: str | None = None
    ollama_sha256: str | None = None
    model_digest: str | None = None
    allow_unpinned: bool = False
    check: bool = False
    limit: str | None = None
    tags: list[str] = Field(default_factory=list)
    bench: bool = True
    timeout: int | None = None
    bundle: str | None = None
    allowed_signers: str | None = None
    only_hosts: list[str] | None = Field(default=None, description="A retry: run these hosts only")


@dataclass(frozen=True)
class RetryPlan:
    run_dir: Path
    invocation: Invocation
    hosts: dict[str, str]  # host -> why it is retried


def retry_hosts(apply_doc: dict[str, Any], verdicts: dict[str, str]) -> dict[str, str]:
    """The hosts to run again, in the run's order, each with the reason."""
    chosen: dict[str, str] = {}
    for host in apply_doc.get("hosts") or []:
        name, status = str(host.get("host")), str(host.get("status"))
        if status in RETRY_STATUSES:
            chosen[name] = status
        elif status == "ok" and verdicts.get(name) == "fail":
            chosen[name] = "benchmark verdict fail"
    return chosen


def load_retry(run_dir: Path) -> RetryPlan:
    """The retry of `run_dir`; UserInputError (one line) when it is not an apply run directory."""
    where = f"--retry-failed {run_dir}"
    if not run_dir.is_dir():
        raise UserInputError(f"{where}: not a directory; give the run directory an apply printed")
    doc = _read_json(run_dir / "apply.json", where)
    if not isinstance(doc, dict) or doc.get("schema") != APPLY_SCHEMA:
        raise UserInputError(f"{where}: apply.json is not a coderig apply record (schema {APPLY_SCHEMA})")
    if not isinstance(doc.get("invocation"), dict):
        raise UserInputError(f"{where}: apply.json does not record the run's options (written by an older "
                             "coderig-deploy); run apply again, naming the failed hosts")
    try:
        invocation = Invocation.model_validate(doc["invocation"])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserInputError(f"{where}: apply.json invocation.{'.'.join(map(str, first['loc']))}: "
                             f"{first['msg']}") from None
    report = run_dir / "report.json"
    verdicts = _verdicts(_read_json(report, where)) if report.is_file() else {}
    return RetryPlan(run_dir=run_dir.resolve(), invocation=invocation, hosts=retry_hosts(doc, verdicts))


def _read_json(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{where}: no {path.name} here; give the run directory an apply printed") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{where}: {path.name}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def _verdicts(report: Any) -> dict[str, str]:
    hosts = report.get("hosts") if isinstance(report, dict) else None
    return {str(h.get("host")): str(h.get("verdict")) for h in hosts or [] if isinstance(h, dict)}
