"""Code check: extract the model's function from its answer and run it against asserts.

The answer runs in a child process, in a fresh temporary directory, with a time
limit, resource limits and no network. Which isolation a host gets depends on what
it allows, and the result says which one it was:

- ``netns`` (root): ``unshare --net --pid --fork --kill-child`` then ``setpriv`` to
  uid/gid 65534 (nobody). The child's network namespace has only a loopback that is
  down: no connection can leave it, whatever the code does. Its PID namespace means
  every process it starts dies with it, even one that calls setsid().
- ``userns`` (not root, unprivileged user namespaces allowed): the same, with
  ``unshare --map-root-user``; the code runs as the calling user.
- ``socket-guard`` (neither works): a prologue replaces ``socket.socket``,
  ``socket.create_connection`` and ``_socket.socket`` with functions that raise.
  This is best effort only: code that runs another program (``subprocess``,
  ``os.system``) or loads a C library can still reach the network. The process
  group is killed on timeout; a grandchild that calls setsid() can outlive it.

The guard prologue runs in every mode, as a second line.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

NOBODY = 65534
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_GUARD = '''\
import socket as _s, _socket as _cs
def _no_network(*a, **k):
    raise OSError(101, "network disabled by the coderig code check")
_s.socket = _cs.socket = _s.create_connection = _s.socketpair = _no_network
del _s, _cs
'''
PASS_MARK = "CODERIG-CODECHECK-PASSED"


@dataclass(frozen=True)
class CodeCheckResult:
    """The outcome of one task: status is "passed", "failed" or "no_code"."""

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


def check_script(code: str, tests: list[str]) -> str:
    """The program the child runs: guard, the model's code, the asserts, a pass mark."""
    return "\n".join([_GUARD, code, "", *tests, f"print({PASS_MARK!r})", ""])


def _probe(cmd: list[str]) -> bool:
    try:
        return subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def detect_isolation() -> tuple[str, list[str]]:
    """The strongest isolation this host allows, and the command prefix that gives it."""
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare and os.geteuid() == 0 and setpriv:
        prefix = [unshare, "--net", "--pid", "--fork", "--kill-child", "--",
                  setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
        if _probe(prefix):
            return "netns", prefix
    if unshare:
        prefix = [unshare, "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--"]
        if _probe(prefix):
            return "userns", prefix
    return "socket-guard", []


def _limits(cpu_s: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))


def run_check(task: str, code: str | None, tests: list[str], timeout_s: float = 10.0,
              isolation: tuple[str, list[str]] | None = None) -> CodeCheckResult:
    """Run `code` against `tests` in a throw-away directory; never raises for bad code."""
    import time

    mode, prefix = isolation or detect_isolation()
    if code is None:
        return CodeCheckResult(task, "no_code", "the answer held no code block", mode, 0.0)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="coderig-codecheck-") as tmp:
        os.chmod(tmp, 0o755)
        script = os.path.join(tmp, "check.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(check_script(code, tests))
        os.chmod(script, 0o644)
        cmd = [*prefix, os.path.realpath(sys.executable), "-I", "-S", "-B", script]
        status, detail = _run(cmd, tmp, timeout_s)
    return CodeCheckResult(task, status, detail, mode, round(time.monotonic() - started, 3))


def _run(cmd: list[str], cwd: str, timeout_s: float) -> tuple[str, str]:
    cpu = int(timeout_s) + 1
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                            preexec_fn=lambda: _limits(cpu))
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "failed", f"timed out after {timeout_s:g}s and was killed"
    if proc.returncode == 0 and PASS_MARK in out:
        return "passed", "all asserts held"
    tail = (err.strip().splitlines() or ["exit status %d" % proc.returncode])[-1]
    return "failed", tail[:300]
