"""The report.json schema as pydantic models (documented in docs/report-schema.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
Status = Literal["pass", "warn", "fail", "skip"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CheckResult(_Strict):
    name: str = Field(description="Stable check id, e.g. decode_speed, gpu_offload, vram_gpu0")
    status: Status
    reason: str = Field(description="One line a person can act on")
    measured: Any = None
    expected: Any = None
    source: Literal["apply", "bench", "verify", "validate"] = "bench"


class HostReport(_Strict):
    host: str
    verdict: Literal["pass", "warn", "fail"]
    reasons: list[str] = Field(default_factory=list, description="The warn and fail reasons")
    checks: list[CheckResult]
    decode_tok_s: float | None = Field(default=None, description="Median measured decode speed")
    expected_decode_tok_s: float | None = None
    processor: str | None = Field(default=None, description="As `ollama ps` prints it")
    context_length: int | None = None
    expected_context: int | None = None
    gpu_used_mib: list[int | None] = Field(default_factory=list, description="Per GPU, driver")
    gpu_planned_mib: list[int] = Field(default_factory=list, description="Per GPU, plan")
    bench: dict[str, Any] | None = Field(default=None, description="Raw coderig-hostbench/1 result")
    profile: str | None = Field(default=None, description="The profile this host was provisioned for; "
                                   "None: no profile fits the host, left untouched")
    profile_reason: str | None = Field(default=None, description="Why that profile (auto choice, "
                                       "inventory, or given on the command line)")
    status: str | None = Field(default=None, description="apply's provisioning status: ok, failed, "
                               "unreachable, timeout, ...")
    failure: str | None = Field(default=None, description="Why provisioning failed, one line")
    failed_role: str | None = Field(default=None, description="The role whose task failed")
    ollama_version: str | None = None
    driver_version: str | None = None
    models: list[str] = Field(default_factory=list, description="Models the host serves for this run")


class ReasonGroup(_Strict):
    outcome: Literal["warn", "fail", "unreachable"]
    reason: str = Field(description="What the hosts have in common: a failed step or a check name")
    hosts: list[str]


class Aggregate(_Strict):
    counts: dict[str, int] = Field(description="pass, warn, fail, unreachable: hosts in each")
    by_reason: list[ReasonGroup] = Field(default_factory=list)


class RunReport(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    tool_version: str
    created_at: str
    profile: str | None = None
    model: str | None = None
    verdict: Literal["pass", "warn", "fail"]
    hosts: list[HostReport]
    aggregate: Aggregate | None = None
    editor_config: str | None = Field(default=None, description="Editors' configuration, relative to the run directory")
