"""A run directory: report.json, report.md and junit.xml side by side."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from coderig_deploy.atomicfile import write_all
from coderig_deploy.bench.checks import FAIL, worst
from coderig_deploy.errors import UserInputError
from coderig_deploy.reports.junit import to_junit
from coderig_deploy.reports.markdown import to_markdown
from coderig_deploy.reports.model import SCHEMA_VERSION, RunReport

FILES = ("report.json", "report.md", "junit.xml")


def write_run(run_dir: Path, report: RunReport) -> list[Path]:
    """Write the three report files into `run_dir` and return their paths.

    All or nothing: when one cannot be written (a full disk), WriteFailed is raised
    and every earlier report file in `run_dir` stays as it was."""
    # ASCII JSON: a host's control characters are \\u escapes there, so `cat report.json` cannot obey them
    texts = (json.dumps(report.model_dump(mode="json"), indent=2) + "\n", to_markdown(report), to_junit(report))
    files = {run_dir / name: text for name, text in zip(FILES, texts)}
    write_all(files)
    return list(files)


def read_run(run_dir: Path) -> RunReport:
    """Load `run_dir/report.json`; UserInputError naming the file when it is not one, or when its verdicts
    disagree with its checks (a file edited by hand or by a script: a CI gate must not read "pass" there)."""
    path = run_dir / "report.json" if run_dir.is_dir() else run_dir
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path}: no report here; pass a run directory that holds "
                             "report.json") from None
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text (byte {exc.start}): not a report.json") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise UserInputError(f"{path}: JSON nested too deeply to be a report") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a JSON {type(data).__name__}, not a report (a JSON object with "
                             "schema_version)")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UserInputError(f"{path}: report schema_version {version!r}; this coderig-deploy "
                             f"reads version {SCHEMA_VERSION}")
    try:
        report = RunReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise UserInputError(f"{path}: {loc}: {first['msg']}") from None
    disagreement = verdict_disagreement(report)
    if disagreement:
        raise UserInputError(f"{path}: {disagreement}: the file was changed after the run wrote it")
    return report


def verdict_disagreement(report: RunReport) -> str | None:
    """Where a report's verdicts are not the ones its checks give (None: they agree). A host's verdict
    is its worst check's (fail without any), the run's its worst host's (fail without any), as
    reports.build assigns them."""
    for h in report.hosts:
        expected = worst(c.status for c in h.checks) if h.checks else FAIL
        if h.verdict != expected:
            return f"host {h.host}: verdict {h.verdict!r}, but its checks give {expected!r}"
    expected = worst(h.verdict for h in report.hosts) if report.hosts else FAIL
    if report.verdict != expected:
        return f"verdict {report.verdict!r}, but its hosts give {expected!r}"
    return None
