"""Run the testinfra checks in-process with pytest and collect one Check per host x test.

SSH goes through paramiko with host keys checked against a known_hosts file
(RejectPolicy): testinfra's own paramiko backend would accept unknown keys.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import pytest
import testinfra

from coderig_deploy.bench.checks import FAIL, PASS, SKIP, Check
from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.bench.verdict import Expectations
from coderig_deploy.verify import hostchecks
from coderig_deploy.verify.editor import editor_checks
from coderig_deploy.verify.spec import VerifySpec


@dataclass(frozen=True)
class Target:
    """One host to verify over SSH."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    key_file: Path | None = None
    known_hosts: Path | None = None


def connect(target: Target, timeout_s: float = 10.0) -> Any:
    """A testinfra Host over an already-connected, host-key-checked paramiko client."""
    client = ssh_client(target, timeout_s)
    host = testinfra.get_host(f"paramiko://{target.user}@{target.address}:{target.port}")
    host.backend.client = client  # cached_property: testinfra uses this connection
    return host


def ssh_client(target: Target, timeout_s: float = 10.0) -> paramiko.SSHClient:
    """A connected paramiko client; the host key must be in known_hosts (RejectPolicy)."""
    client = paramiko.SSHClient()
    known = target.known_hosts or Path.home() / ".ssh" / "known_hosts"
    if known.exists():
        client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(target.address, port=target.port, username=target.user,
                       key_filename=str(target.key_file) if target.key_file else None,
                       timeout=timeout_s, allow_agent=target.key_file is None)
    except paramiko.BadHostKeyException:
        raise EnvironmentProblem(f"{target.name}: host key for {target.address} does not match known_hosts "
                                 f"{known}: refused (if the host was reinstalled, check its new key's "
                                 f"fingerprint, then `ssh-keygen -R {target.address} -f {known}`)") from None
    except (paramiko.SSHException, OSError) as exc:
        if "not found in known_hosts" in str(exc):
            port = f"-p {target.port} " if target.port != 22 else ""
            raise EnvironmentProblem(f"{target.name}: unknown host {target.address}: its key is not in "
                                     f"known_hosts {known}; check the fingerprint and add it with "
                                     f"`ssh-keyscan {port}{target.address} >> {known}`") from None
        raise EnvironmentProblem(f"{target.name}: cannot SSH to {target.user}@{target.address}:"
                                 f"{target.port}: {exc}") from None
    return client


class _Plugin:
    def __init__(self, targets: list[Target], spec: VerifySpec) -> None:
        self.targets = {t.name: t for t in targets}
        self.spec_data = spec.as_dict()
        self.hosts: dict[str, Any] = {}
        self.results: dict[str, list[Check]] = {t.name: [] for t in targets}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "target" in metafunc.fixturenames:
            metafunc.parametrize("target", list(self.targets), indirect=True, ids=str)

    @pytest.fixture
    def target(self, request: pytest.FixtureRequest) -> Any:
        name = request.param
        if name not in self.hosts:
            self.hosts[name] = connect(self.targets[name])
        return self.hosts[name]

    @pytest.fixture
    def spec(self) -> dict[str, Any]:
        return self.spec_data

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.failed or report.skipped:
            host = report.nodeid.rsplit("[", 1)[-1].rstrip("]")
            check = report.nodeid.split("::")[-1].split("[")[0].removeprefix("test_")
            if any(c.name == check for c in self.results.get(host, [])):
                return
            status = PASS if report.passed else SKIP if report.skipped else FAIL
            self.results.setdefault(host, []).append(Check(check, status, _reason(report)))


def _reason(report: pytest.TestReport) -> str:
    if report.passed:
        return "ok"
    if report.skipped and isinstance(report.longrepr, tuple):  # (file, line, "Skipped: why")
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    first = text.splitlines()[0] if text else "failed"
    for prefix in ("AssertionError: ", "coderig_deploy.errors.EnvironmentProblem: "):
        first = first.removeprefix(prefix)
    return first


def run_verify(targets: list[Target], spec: VerifySpec,
               editor: Expectations | None = None) -> dict[str, list[Check]]:
    """Run every check on every target; {host name: [Check, ...]} in check order.

    With `editor` (the profile's expectations) the editor checks follow, one row each."""
    plugin = _Plugin(targets, spec)
    args = [hostchecks.__file__, "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--rootdir", os.path.dirname(hostchecks.__file__), "-c", os.devnull,
            "--no-header", "--tb=line", "-W", "ignore::DeprecationWarning"]
    log = io.StringIO()
    with contextlib.redirect_stdout(log):  # keep `--json` output clean
        code = pytest.main(args, plugins=[plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise EnvironmentProblem(f"the verify checks could not run (pytest exit {int(code)}): "
                                 + log.getvalue()[-500:])
    if editor is not None and spec.editor_args:
        for target in targets:
            if target.name not in plugin.hosts:
                if any(c.status == "fail" for c in plugin.results.get(target.name, [])):
                    continue  # it could not be reached (refused key, down): that failure is its report
                plugin.hosts[target.name] = connect(target)
            plugin.results.setdefault(target.name, []).extend(
                editor_checks(plugin.hosts[target.name], spec.as_dict(), editor))
    for host in plugin.hosts.values():
        host.backend.client.close()
    return plugin.results
