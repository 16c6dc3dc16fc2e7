"""The code check: extraction from answers, and a sandbox that kills slow code and blocks the network."""

import socket
import subprocess
import threading
import time

import pytest

from coderig_deploy.bench import codecheck
from coderig_deploy.bench.tasks import load_tasks, simulator_answers
from coderig_deploy.errors import BenchError

MODES = {"detected": codecheck.detect_isolation(), "socket-guard": ("socket-guard", [])}


def test_this_machine_gets_a_namespace() -> None:
    # CI runs as root with util-linux: the real isolation must be available there.
    assert MODES["detected"][0] in ("netns", "userns")


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
    result = codecheck.run_check("t", None, ["assert True"], isolation=MODES["detected"])
    assert result.status == "no_code"


@pytest.mark.parametrize("task", load_tasks(), ids=lambda t: t.id)
def test_every_shipped_task_passes_with_its_reference(task) -> None:
    answer = f"Sure.\n```python\n{task.reference}```\n"
    code = codecheck.extract_code(answer, task.entry_point)
    assert codecheck.run_check(task.id, code, task.tests).status == "passed"


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
    result = codecheck.run_check("t", "while True:\n    pass\n", [], 1.5, MODES[mode])
    assert result.status == "failed" and "timed out" in result.detail
    assert time.monotonic() - started < 5


def _alive(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


def test_detached_grandchild_dies_with_the_check() -> None:
    # setsid() leaves the process group; only the PID namespace catches it.
    marker = "coderig-escape-test-4711"
    code = ("import subprocess, time\n"
            f"subprocess.Popen(['sh', '-c', 'exec -a {marker} sleep 300'], start_new_session=True)\n"
            "time.sleep(60)\n")
    result = codecheck.run_check("t", code, [], 1.5, MODES["detected"])
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
    result = codecheck.run_check("t", code, [], 5, MODES[mode])
    assert result.status == "failed"
    assert accepted == []


def test_namespace_blocks_even_a_separate_program(listener) -> None:
    # The socket guard cannot stop another program; the network namespace can.
    port, accepted = listener
    code = ("import subprocess, sys\n"
            "rc = subprocess.call([sys.executable, '-c', 'import socket; "
            f"socket.create_connection((\"127.0.0.1\", {port}), timeout=2)'])\n"
            "assert rc == 0, 'child could not connect'\n")
    result = codecheck.run_check("t", code, [], 5, MODES["detected"])
    assert result.status == "failed"
    assert accepted == []


def test_control_the_listener_does_see_an_unsandboxed_connection(listener) -> None:
    port, accepted = listener
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    time.sleep(0.5)
    assert len(accepted) == 1
