"""Run reports: report.json (schema in docs/report-schema.md), report.md and junit.xml."""

from coderig_deploy.reports.model import SCHEMA_VERSION, CheckResult, HostReport, RunReport
from coderig_deploy.reports.build import host_report, run_report, summary_row
from coderig_deploy.reports.store import read_run, write_run

__all__ = ["SCHEMA_VERSION", "CheckResult", "HostReport", "RunReport", "host_report",
           "run_report", "summary_row", "read_run", "write_run"]
