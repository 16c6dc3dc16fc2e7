"""The code check: extraction from answers, and a sandbox that kills slow code and blocks the network."""

import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from coderig_deploy.bench import codecheck, isolation
from coderig_deploy.bench.tasks import load_tasks, simulator_answers
from coderig_deploy.errors import BenchError

# "userns" is what a non-root caller gets: here root first becomes nobody, then the
# user namespace maps nobody to 65534 inside, exactly the unprivileged path.
_AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
MODES = {"detected": codecheck.detect_isolation(),
         "userns": ("userns", _AS_NOBODY + isolation.userns_prefix(shutil.which("unshare") or "unshare"))}
PALINDROME = load_tasks(["is_palindrome"])[0]


def _python_nobody_can_run() -> str:
    # The unprivileged path execs Python without any capability: a venv whose interpreter
    # lives under /root (pyenv) is not reachable then, the system one is. Hosts use that.
    ours = isolation.python()
    ok = subprocess.run([*_AS_NOBODY, "test", "-x", ours], check=False).returncode == 0
    return ours if ok else "/usr/bin/python3"


@pytest.fixture(autouse=True)
def _reachable_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "python", lambda: PYTHON)


PYTHON = _python_nobody_can_run()


def test_this_machine_gets_a_namespace() -> None:
    # CI runs as root with util-linux: the real isolation must be available there.
    assert MODES["detected"][0] == "netns"
    assert all(isolation.runs_as_nobody(prefix) for _, prefix in MODES.values())


def test_without_unshare_there_is_no_isolation(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert codecheck.detect_isolation() == ("none", [])
    assert "unshare" in isolation.why_none()


def test_root_without_setpriv_never_falls_back_to_a_user_namespace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # As root, a user namespace maps 65534 back to uid 0 outside: not isolation.
    real = shutil.which
    monkeypatch.setattr(isolation.shutil, "which", lambda n: None if n == "setpriv" else real(n))
    assert isolation.detect() == ("none", [])
    assert "setpriv" in isolation.why_none()


def test_a_prefix_that_leaves_root_is_not_isolation() -> None:
    assert not isolation.runs_as_nobody([])
    assert not isolation.runs_as_nobody(["unshare", "--net", "--"])


def test_no_isolation_refuses_to_run_the_answer(tmp_path) -> None:
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()\ndef is_palindrome(t):\n    return True\n"
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, ("none", []))
    assert result.status == "skipped" and result.isolation == "none"
    assert result.detail.startswith("no isolation: ") and "not run" in result.detail
    assert not marker.exists()


def test_extract_prefers_block_defining_the_function() -> None:
    answer = ("Usage:\n```python\nprint(f(1))\n```\nCode:\n```python\ndef f(x):\n    return x\n```\n"
              "Shell:\n```bash\necho hi\n```")
    assert codecheck.extract_code(answer, "f") == "def f(x):\n    return x\n"


def test_extract_untagged_and_unterminated_fence() -> None:
    assert codecheck.extract_code("```\ndef f():\n    pass\n```", "f") == "def f():\n    pass\n"
    assert codecheck.extract_code("```py\ndef f():\n    return 1\n", "f") == "def f():\n    return 1\n"


def test_extract_ignores_other_languages_and_prose() -> None:
    assert codecheck.extract_code("```js\nfunction f() {}\n```", "f") is None
    assert codecheck.extract_code("I cannot help with that.", "f") is None


def test_extract_bare_code_only_when_it_compiles() -> None:
    assert codecheck.extract_code("def f():\n    return 2\n", "f") == "def f():\n    return 2\n"
    assert codecheck.extract_code("Here: def f(): return (", "f") is None


def test_no_code_is_its_own_status() -> None:
    result = codecheck.run_check("t", None, PALINDROME.tests, isolation=MODES["detected"])
    assert result.status == "no_code"


@pytest.mark.parametrize("task", load_tasks(), ids=lambda t: t.id)
def test_every_shipped_task_passes_with_its_reference(task) -> None:
    answer = f"Sure.\n```python\n{task.reference}```\n"
    code = codecheck.extract_code(answer, task.entry_point)
    result = codecheck.run_check(task.id, code, task.tests)
    assert (result.status, result.isolation) == ("passed", "netns"), result.detail


def test_the_user_namespace_mode_passes_a_correct_answer() -> None:
    result = codecheck.run_check("t", PALINDROME.reference, PALINDROME.tests, 10, MODES["userns"])
    assert (result.status, result.isolation) == ("passed", "userns"), result.detail


@pytest.mark.parametrize("task", load_tasks(), ids=lambda t: t.id)
def test_every_shipped_task_fails_a_wrong_answer(task) -> None:
    wrong = task.reference.replace("return ", "return None and ", 1)
    assert codecheck.run_check(task.id, wrong, task.tests).status == "failed"


def test_unknown_task_name() -> None:
    with pytest.raises(BenchError, match="unknown code-check task"):
        load_tasks(["nope"])


def test_simulator_answers_cover_every_task() -> None:
    answers = simulator_answers()["answers"]
    assert set(answers) == {t.entry_point for t in load_tasks()}


@pytest.mark.parametrize("mode", MODES)
def test_busy_loop_is_killed_at_its_time_limit(mode: str) -> None:
    started = time.monotonic()
    result = codecheck.run_check("t", "while True:\n    pass\n", PALINDROME.tests, 1.5, MODES[mode])
    assert result.status == "failed" and "timed out" in result.detail
    assert time.monotonic() - started < 5


def _alive(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


@pytest.mark.parametrize("mode", MODES)
def test_detached_grandchild_dies_with_the_check(mode: str) -> None:
    # setsid() leaves the process group; only the PID namespace catches it.
    marker = "coderig-escape-test-4711"
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 300'], start_new_session=True)\n"
            "time.sleep(60)\n")
    result = codecheck.run_check("t", code, PALINDROME.tests, 1.5, MODES[mode])
    assert result.status == "failed" and "timed out" in result.detail
    time.sleep(0.3)
    assert not _alive(marker), "a process started by the checked code outlived the check"


@pytest.fixture
def listener():
    """A TCP server on loopback that records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize("mode", MODES)
def test_python_socket_cannot_connect(mode: str, listener) -> None:
    port, accepted = listener
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, MODES[mode])
    assert result.status == "failed" and "did not load" in result.detail
    assert accepted == []


@pytest.mark.parametrize("mode", MODES)
def test_namespace_blocks_even_a_separate_program(mode: str, listener) -> None:
    # The socket guard cannot stop another program; the network namespace can.
    port, accepted = listener
    code = ("import subprocess, sys\n"
            "rc = subprocess.call([sys.executable, '-c', 'import socket; "
            f"socket.create_connection((\"127.0.0.1\", {port}), timeout=2)'])\n"
            "assert rc == 0, 'child could not connect'\n")
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, MODES[mode])
    assert result.status == "failed" and "child could not connect" in result.detail
    assert accepted == []


def test_control_the_listener_does_see_an_unsandboxed_connection(listener) -> None:
    port, accepted = listener
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    time.sleep(0.5)
    assert len(accepted) == 1


@pytest.mark.parametrize("mode", MODES)
def test_the_answer_runs_as_nobody(mode: str) -> None:
    code = "import os\ndef ids():\n    return [os.getuid(), os.geteuid(), os.getgid(), os.getegid()]\n"
    tests = [{"call": "ids()", "expect": "[65534, 65534, 65534, 65534]"}]
    result = codecheck.run_check("t", code, tests, 5, MODES[mode])
    assert result.status == "passed", result.detail


@pytest.mark.parametrize("mode", MODES)
def test_printing_the_old_pass_marker_and_exiting_fails(mode: str) -> None:
    # The old harness passed on this marker in stdout after exit status 0.
    code = ("import os, sys\n"
            "print('CODERIG-CODECHECK-PASSED')\n"
            "sys.stderr.write('CODERIG-CODECHECK-PASSED\\n')\n"
            "os._exit(0)\n")
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, MODES[mode])
    assert result.status == "failed" and "no results" in result.detail


def test_a_forged_report_line_with_a_guessed_nonce_fails() -> None:
    forged = json.dumps({"exit": 0, "results": json.dumps(
        [{"value": "True"}, {"value": "False"}, {"value": "True"}, {"value": "True"},
         {"value": "False"}])})
    code = ("import os\n"
            f"for guess in ('0' * 32, 'f' * 32):\n    print(guess, {forged!r})\n"
            "os._exit(0)\n")
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, MODES["detected"])
    assert result.status == "failed"


def test_an_object_that_equals_everything_fails() -> None:
    code = ("class Yes:\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = object.__hash__\n"
            "def is_palindrome(text):\n    return Yes()\n")
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, MODES["detected"])
    assert result.status == "failed" and "TypeError: returned a Yes" in result.detail


def test_one_wrong_call_fails_and_is_named() -> None:
    code = "def is_palindrome(text):\n    return text != 'ab'\n"
    result = codecheck.run_check("t", code, PALINDROME.tests, 5, MODES["detected"])
    assert result.status == "failed"
    assert result.detail == 'is_palindrome("race a car") returned True, expected False'


# The answer looks for the nonce everywhere its process can reach: environment, argv,
# its own and its parent's /proc entries, stdin, every object in its memory, the files
# beside it. It returns where it found the nonce (or could open what it must not).
_SNOOP = """\
import gc, os, sys
def _scan(target):
    found = []
    def look(where, text):
        if text is not target and target in str(text):
            found.append(where)
    look("environ", dict(os.environ)); look("argv", sys.argv)
    look("stdin", sys.stdin.read())
    with open("/proc/self/status") as fh:  # the parent's pid as /proc (the host's) knows it
        parent = next(line.split()[1] for line in fh if line.startswith("PPid:"))
    for name in ("cmdline", "environ"):
        for pid in ("self", parent):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as fh:
                    look(f"/proc/{pid}/{name}", fh.read())
            except OSError:
                pass
    for what in ("fd/0", "fd/1", "mem"):
        try:
            os.close(os.open(f"/proc/{parent}/{what}", os.O_RDONLY | os.O_NONBLOCK))
            found.append(f"opened parent {what}")
        except OSError:
            pass
    for name in os.listdir("."):
        with open(name, encoding="utf-8", errors="replace") as fh:
            look(name, fh.read())
    for obj in gc.get_objects():
        items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
        for item in items:
            if isinstance(item, (str, bytes)):
                look("memory", item)
    frame = sys._getframe(2)  # the callers of snoop()
    while frame:
        for value in frame.f_locals.values():
            look("frames", value)
        frame = frame.f_back
    return sorted(set(found))
def snoop(target):
    return _scan(target)
"""
NONCE = "feedfacecafebeef" * 2  # the calls build it at run time: their text holds half


@pytest.mark.parametrize("mode", MODES)
def test_the_answer_cannot_find_the_nonce(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecheck.secrets, "token_hex", lambda n: NONCE)
    # Control: a string from the calls (which the answer's process does get) is found.
    tests = [{"call": "snoop('feedfacecafebeef' * 2)", "expect": "[]"},
             {"call": "'memory' in snoop('coderig-' + 'canary'), 'coderig-canary'", "expect": "(True, 'coderig-canary')"}]
    result = codecheck.run_check("t", _SNOOP, tests, 10, MODES[mode])
    assert result.status == "passed", result.detail


def test_same_is_strict_about_types() -> None:
    assert codecheck.same([(1, 4)], [(1, 4)])
    assert not codecheck.same(1, True) and not codecheck.same([[1, 4]], [(1, 4)])
    assert not codecheck.same(5400.0, 5400) and codecheck.same({"a": (1,)}, {"a": (1,)})


def test_results_that_are_not_literals_fail() -> None:
    tests = [{"call": "f()", "expect": "1"}]
    assert codecheck.judge_results(json.dumps([{"value": "__import__('os')"}]), tests)[0] == "failed"
    assert codecheck.judge_results(json.dumps([{"value": "1"}]), tests)[0] == "passed"
    assert codecheck.judge_results("not json", tests)[0] == "failed"
    assert codecheck.judge_results(json.dumps([]), tests)[0] == "failed"
