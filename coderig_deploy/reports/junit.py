"""junit.xml: one testsuite per host, one testcase per check, for CI systems."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from coderig_deploy.reports.fleet import COMMAND_LINE, outcome
from coderig_deploy.reports.model import HostReport, RunReport
from coderig_deploy.safetext import safe


def to_junit(report: RunReport) -> str:
    """JUnit XML: fail -> <failure>, skip -> <skipped>, warn -> passed with system-out."""
    suites = ET.Element("testsuites", name="coderig-deploy")
    for host in report.hosts:
        suite = ET.SubElement(suites, "testsuite", name=safe(host.host), tests=str(len(host.checks)),
                              failures=str(sum(c.status == "fail" for c in host.checks)),
                              skipped=str(sum(c.status == "skip" for c in host.checks)),
                              errors="0")
        _properties(suite, host)
        for check in host.checks:
            case = ET.SubElement(suite, "testcase", classname=safe(f"coderig.{host.host}"),
                                 name=safe(check.name))
            reason = safe(check.reason)
            if check.status == "fail":
                ET.SubElement(case, "failure", message=reason).text = reason
            elif check.status == "skip":
                ET.SubElement(case, "skipped", message=reason)
            else:
                ET.SubElement(case, "system-out").text = f"{check.status}: {reason}"
    ET.indent(suites)
    # A host's text may carry control characters (a command's coloured output); XML 1.0 allows none of them, so
    # each value is written with them as visible escapes (safe), and the file stays one a CI server can parse.
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _properties(suite: ET.Element, host: HostReport) -> None:
    """The host's outcome and profile as testsuite properties (CI shows them per suite)."""
    props = ET.SubElement(suite, "properties")
    values = {"outcome": outcome(host), "profile": host.profile,
              "profile_reason": host.profile_reason or (COMMAND_LINE if host.profile else None),
              "failure": host.failure}
    for name, value in values.items():
        if value is not None:
            ET.SubElement(props, "property", name=name, value=safe(value))


@dataclass(frozen=True)
class JunitCase:
    host: str
    name: str
    outcome: str  # passed | failure | skipped
    message: str


def parse_junit(text: str) -> list[JunitCase]:
    """Read junit.xml back into cases (host from the testsuite name)."""
    cases = []
    for suite in ET.fromstring(text).iter("testsuite"):
        for case in suite.iter("testcase"):
            failure, skipped = case.find("failure"), case.find("skipped")
            node = failure if failure is not None else skipped
            outcome = "failure" if failure is not None else \
                "skipped" if skipped is not None else "passed"
            message = node.get("message", "") if node is not None else \
                (case.findtext("system-out") or "")
            cases.append(JunitCase(suite.get("name", ""), case.get("name", ""), outcome, message))
    return cases
