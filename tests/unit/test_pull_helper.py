"""The models role's pull helper against a local server speaking /api/pull's stream."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HELPER = Path(__file__).parents[2] / "playbooks/roles/models/files/coderig-pull.py"
# Lines as ollama.md documents them: "completed" missing at first, then counts, then success.
SUCCESS = [{"status": "pulling manifest"},
           {"status": "pulling 4bd6cbf2d094", "digest": "sha256:4bd6", "total": 2000},
           {"status": "pulling 4bd6cbf2d094", "digest": "sha256:4bd6", "total": 2000, "completed": 2000},
           {"status": "pulling 0ba8f0e314b4", "digest": "sha256:0ba8", "total": 48, "completed": 48},
           {"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
ERROR_LINE = [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]


class _Handler(BaseHTTPRequestHandler):
    script: tuple[dict[str, object], ...] = ()
    status = 200
    stall: threading.Event | None = None  # set: hold the stream open after the script until it is set

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert request["stream"] is True and request["model"] == "10.0.0.1:5000/library/m:1b"
        self.send_response(self.status)
        self.end_headers()
        for line in self.script:
            self.wfile.write(json.dumps(line).encode() + b"\n")
        if self.stall is not None:
            self.wfile.flush()
            self.stall.wait(60)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("H", (_Handler,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    if handler.stall is not None:
        handler.stall.set()
    httpd.shutdown()


RUN = "20261130T190000Z"
OWN = ("run", "pid", "started")  # every document names its run and process


def _argv(url: str, progress: Path) -> list[str]:
    return [sys.executable, str(HELPER), "--url", url, "--model", "10.0.0.1:5000/library/m:1b",
            "--insecure", "--progress", str(progress), "--run-id", RUN]


def _pull(url: str, tmp_path: Path) -> tuple[int, dict[str, object]]:
    progress = tmp_path / "progress.json"
    proc = subprocess.run(_argv(url, progress), capture_output=True, text=True, timeout=30, check=False)
    doc = json.loads(progress.read_text())
    assert doc["run"] == RUN and isinstance(doc["pid"], int)
    return proc.returncode, {k: v for k, v in doc.items() if k not in OWN}


def _show(progress: Path, run: str = RUN) -> dict[str, object]:
    """What the role's wait loop sees."""
    proc = subprocess.run([sys.executable, str(HELPER), "--show", "--progress", str(progress), "--run-id", run],
                          capture_output=True, text=True, timeout=30, check=True)
    return dict(json.loads(proc.stdout))


def test_a_successful_pull_ends_done_with_the_byte_counts(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    url, handler = server
    handler.script = tuple(SUCCESS)
    assert _pull(url, tmp_path) == (0, {"status": "success", "done": True, "completed": 2048, "total": 2048})


def test_an_error_line_ends_the_pull_with_its_message(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    url, handler = server
    handler.script = tuple(ERROR_LINE)
    assert _pull(url, tmp_path) == (1, {"done": True, "error": "pull model manifest: file does not exist"})


def test_an_error_answer_is_read_from_its_body(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    url, handler = server
    handler.script, handler.status = ({"error": "model not found"},), 500
    assert _pull(url, tmp_path) == (1, {"done": True, "error": "model not found"})


def test_a_stream_that_stops_early_is_an_error(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    url, handler = server
    handler.script = tuple(SUCCESS[:3])
    code, doc = _pull(url, tmp_path)
    assert code == 1 and "not success" in str(doc["error"])


def test_nobody_listening_is_an_error(tmp_path: Path) -> None:
    code, doc = _pull("http://127.0.0.1:9", tmp_path)
    assert code == 1 and doc["done"] is True and "Connection refused" in str(doc["error"])


def test_a_finished_pull_shows_as_done_to_the_wait_loop(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    url, handler = server
    handler.script = tuple(SUCCESS)
    assert _pull(url, tmp_path)[0] == 0
    shown = _show(tmp_path / "progress.json")
    assert shown["done"] is True and shown["status"] == "success" and "error" not in shown


def test_a_progress_file_of_an_earlier_run_is_never_read_as_this_runs(tmp_path: Path) -> None:
    progress = tmp_path / "progress.json"
    progress.write_text(json.dumps({"status": "success", "done": True, "completed": 9, "total": 9,
                                    "run": "20261129T080000Z", "pid": 1, "started": 0}))
    assert _show(progress) == {"status": "waiting for the pull to start", "done": False, "run": RUN}
    progress.write_text(json.dumps({"status": "success", "done": True}))  # the old helper's format: no run
    assert _show(progress)["done"] is False
    assert _show(tmp_path / "missing.json")["done"] is False


def test_a_pull_killed_before_it_finished_is_a_failure(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    """The async job's time limit kills the helper mid-stream: no final line is ever written."""
    url, handler = server
    handler.script, handler.stall = tuple(SUCCESS[:3]), threading.Event()
    progress = tmp_path / "progress.json"
    proc = subprocess.Popen(_argv(url, progress))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _show(progress).get("status") in (None, "starting",
                                                                              "waiting for the pull to start"):
            time.sleep(0.2)
        running = _show(progress)
        assert running["done"] is False and running["pid"] == proc.pid  # alive: still in progress
    finally:
        proc.kill()
        proc.wait(timeout=10)
    shown = _show(progress)
    assert shown["done"] is True and "status" in shown
    assert str(shown["error"]).startswith(f"the pull process (pid {proc.pid}) ended before the pull finished")


def test_a_pull_past_its_deadline_ends_with_an_error(server: tuple[str, type[_Handler]], tmp_path: Path) -> None:
    url, handler = server
    handler.script, handler.stall = tuple(SUCCESS[:3]), threading.Event()
    progress = tmp_path / "progress.json"
    started = time.monotonic()
    proc = subprocess.run([*_argv(url, progress), "--deadline", "2"], capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 1 and 2 <= time.monotonic() - started < 20
    shown = _show(progress)
    assert shown["done"] is True and shown["error"] == "the pull did not finish within 2 s (models_pull_timeout)"
