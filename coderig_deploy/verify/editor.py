"""verify's editor checks: the host's own benchmark program, editor checks only, over SSH.

The smoke role left `coderig-bench.pyz` on the host (smoke_remote_dir); it runs there
against Ollama's loopback address, so nothing has to be exposed for the check.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from coderig_deploy.bench.checks import FAIL, Check
from coderig_deploy.bench.verdict import Expectations, judge
from coderig_deploy.smoke import PYZ_NAME

BENCH_ON_HOST = f"/var/lib/coderig/smoke/{PYZ_NAME}"  # the smoke role's smoke_remote_dir


def api_url(bind: str) -> str:
    """The URL the host itself reaches Ollama at (a wildcard bind answers on loopback too)."""
    host, _, port = bind.rpartition(":")
    return f"http://{'127.0.0.1' if host.strip('[]') in ('0.0.0.0', '::', '') else host}:{port}"


def command(spec: dict[str, Any]) -> str:
    return shlex.join(["python3", BENCH_ON_HOST, "--model", spec["variant"], "--url", api_url(spec["bind"]),
                       "--editor-only", *spec["editor_args"]])


def editor_checks(host: Any, spec: dict[str, Any], exp: Expectations) -> list[Check]:
    """Run the editor checks on `host` (a testinfra Host); one Check per editor row."""
    if not host.file(BENCH_ON_HOST).is_file:
        return [Check("editor", FAIL, f"{BENCH_ON_HOST} is missing: run `coderig-deploy apply` (its smoke "
                                      "step installs the benchmark), then verify again")]
    out = host.run(command(spec))
    if out.rc == 2:
        return [Check("editor", FAIL, "the benchmark on the host predates the editor checks: run "
                                      f"`coderig-deploy apply` again ({out.stderr.strip().splitlines()[-1:]})")]
    try:
        result = json.loads(out.stdout)
    except ValueError:
        return [Check("editor", FAIL, f"the benchmark printed no JSON (rc {out.rc}): {out.stderr.strip()[:200]}")]
    return [Check(**c) for c in judge(result, exp)["checks"] if c["name"].startswith("editor") or c["status"] == FAIL]
