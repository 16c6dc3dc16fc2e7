"""A run directory: report.json, report.md and junit.xml side by side."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from coderig_deploy.atomicfile import write_all
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
    """Load `run_dir/report.json`; UserInputError naming the file when it is not one."""
    path = run_dir / "report.json" if run_dir.is_dir() else run_dir
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path}: no report here; pass a run directory that holds "
                             "report.json") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise UserInputError(f"{path}: report schema_version {version!r}; this coderig-deploy "
                             f"reads version {SCHEMA_VERSION}")
    try:
        return RunReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise UserInputError(f"{path}: {loc}: {first['msg']}") from None
