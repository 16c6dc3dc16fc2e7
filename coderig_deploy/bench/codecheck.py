"""Code check: extract the model's function from its answer and test it, isolated.

The answer runs in a child process (codecheck_child.py) in a fresh temporary
directory, with a time limit, rlimits, an empty environment, and the isolation of
isolation.py: network and PID namespaces, as uid 65534. Without such isolation it
does not run at all: the task is ``skipped`` ("no isolation") and the report says so.

The child never decides a pass. It returns the value of each call (plain builtin
types only) on a line tagged with a per-run nonce that the answer's process never
holds; this module compares the values with the task's expected results, which never
leave this process. Printing a marker and exiting early, returning an object whose
``__eq__`` always says yes, or printing a forged result line all fail.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from coderig_deploy.bench import isolation as _isolation

NO_ISOLATION = "no isolation"
MAX_VALUE_CHARS = 100_000
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


@dataclass(frozen=True)
class CodeCheckResult:
    """The outcome of one task: status is "passed", "failed", "no_code" or "skipped"."""

    task: str
    status: str
    detail: str
    isolation: str
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_code(answer: str, entry_point: str) -> str | None:
    """The code of the fenced block that defines `entry_point`.

    Fenced blocks tagged python/py/python3 or untagged are candidates; the first
    that defines ``def entry_point(`` wins, else the first candidate. An answer
    without any fence counts only when it is itself code that defines the function.
    """
    blocks = [body for lang, body in _FENCE.findall(answer)
              if lang.lower() in ("", "python", "py", "python3")]
    defines = re.compile(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.M)
    for body in blocks:
        if defines.search(body):
            return body.strip("\n") + "\n"
    if blocks:
        return blocks[0].strip("\n") + "\n"
    if "```" not in answer and defines.search(answer):
        try:
            compile(answer, "<answer>", "exec")
        except SyntaxError:
            return None
        return answer.strip("\n") + "\n"
    return None


def detect_isolation() -> tuple[str, list[str]]:
    """The isolation this host allows (isolation.detect)."""
    return _isolation.detect()


def _limits(cpu_s: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))


def run_check(task: str, code: str | None, tests: list[dict[str, str]], timeout_s: float = 10.0,
              isolation: tuple[str, list[str]] | None = None) -> CodeCheckResult:
    """Run `code` against `tests` ({"call", "expect"|"raises"}); never raises for bad code."""
    mode, prefix = isolation or detect_isolation()
    if code is None:
        return CodeCheckResult(task, "no_code", "the answer held no code block", mode, 0.0)
    if mode == _isolation.NONE or not prefix:
        return CodeCheckResult(task, "skipped", f"{NO_ISOLATION}: {_isolation.why_none()}; "
                               "the answer was not run", _isolation.NONE, 0.0)
    started = time.monotonic()
    nonce = secrets.token_hex(16)
    request = json.dumps({"nonce": nonce, "calls": [t["call"] for t in tests]}) + "\n"
    with tempfile.TemporaryDirectory(prefix="coderig-codecheck-") as tmp:
        os.chmod(tmp, 0o755)
        child = resources.files(__package__).joinpath("codecheck_child.py").read_text("utf-8")
        for name, text in (("harness.py", child), ("answer.py", code)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(os.path.join(tmp, name), 0o644)
        cmd = [*prefix, _isolation.python(), "-I", "-S", "-B", "harness.py"]
        status, detail = _run(cmd, tmp, request, nonce, tests, timeout_s)
    return CodeCheckResult(task, status, detail, mode, round(time.monotonic() - started, 3))


def _run(cmd: list[str], cwd: str, request: str, nonce: str, tests: list[dict[str, str]],
         timeout_s: float) -> tuple[str, str]:
    cpu = int(timeout_s) + 1
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                            preexec_fn=lambda: _limits(cpu))
    try:
        out, err = proc.communicate(request, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "failed", f"timed out after {timeout_s:g}s and was killed"
    report = _tagged_report(out, nonce)
    if report is None:
        tail = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return "failed", f"the harness reported no result ({tail[:200]})"
    return judge_results(report.get("results"), tests, err)


def _tagged_report(stdout: str, nonce: str) -> dict[str, Any] | None:
    """The harness's one report line: only a line starting with this run's nonce counts."""
    lines = [line for line in stdout.splitlines() if line.startswith(nonce + " ")]
    if len(lines) != 1:
        return None
    try:
        report = json.loads(lines[0][len(nonce) + 1:])
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def judge_results(raw: Any, tests: list[dict[str, str]], stderr: str = "") -> tuple[str, str]:
    """Compare what the answer returned with the expected results: ("passed"|"failed", why)."""
    try:
        results = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        results = None
    if isinstance(results, dict) and isinstance(results.get("load_error"), str):
        return "failed", f"the answer did not load: {results['load_error'][:200]}"
    if not isinstance(results, list) or len(results) != len(tests):
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return "failed", f"the answer returned no results (it exited early?): {tail[:200]}"
    for test, result in zip(tests, results):
        problem = _case_problem(test, result)
        if problem:
            return "failed", problem
    return "passed", f"all {len(tests)} calls returned the expected results"


def _case_problem(test: dict[str, str], result: Any) -> str | None:
    call = test["call"]
    if not isinstance(result, dict):
        return f"{call}: malformed result"
    raised = result.get("raised")
    if "raises" in test:
        if isinstance(raised, list) and test["raises"] in raised:
            return None
        return f"{call} did not raise {test['raises']}"
    if raised is not None:
        name = raised[0] if isinstance(raised, list) and raised else "an exception"
        return f"{call} raised {name}: {str(result.get('message'))[:120]}"
    got = _literal(result.get("value"))
    expected = ast.literal_eval(test["expect"])
    if got is _BAD or not same(got, expected):
        shown = str(result.get("value"))[:80]
        return f"{call} returned {shown}, expected {test['expect']}"
    return None


_BAD = object()


def _literal(text: Any) -> Any:
    """A value the answer's process sent (untrusted): a Python literal, or _BAD."""
    if not isinstance(text, str) or len(text) > MAX_VALUE_CHARS:
        return _BAD
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _BAD


def same(got: Any, expected: Any) -> bool:
    """Equal values of the same types all the way down (True is not 1, (1, 2) not [1, 2])."""
    if type(got) is not type(expected):
        return False
    if isinstance(got, (list, tuple)):
        return len(got) == len(expected) and all(map(same, got, expected))
    if isinstance(got, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in got)
    return bool(got == expected)
