"""What `bench` says when the URL is not an Ollama: a bad --host is refused before anything is tried, and
another server's error page becomes one line in the report, not the page itself."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coderig_deploy.bench.ollama_api import http_error_detail


class _HtmlNotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_error(404, "File not found")  # http.server's own HTML error page

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlNotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coderig_deploy", "bench", "--model", "m:1", "--runs", "1", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_an_html_error_page_is_one_line_in_every_report(web_server: str, tmp_path: Path) -> None:
    proc = _bench("--host", web_server, "--out", str(tmp_path / "run"), "--json")
    assert proc.returncode == 1, proc.stderr
    service = json.loads(proc.stdout)["hosts"][0]["checks"][0]
    assert service["status"] == "fail"
    assert service["reason"].startswith(f"{web_server}/api/version: HTTP 404: File not found (not an Ollama "
                                        "reply: "), service["reason"]
    assert service["reason"].endswith(" bytes, HTML)")
    assert "\n" not in service["reason"] and "<" not in service["reason"]
    markdown = (tmp_path / "run" / "report.md").read_text()
    assert "<html" not in markdown.lower() and "File not found (not an Ollama reply" in markdown


@pytest.mark.parametrize("host", ["not a url", "ftp://127.0.0.1:11434", "http://", "http://x:port",
                                  "file:///etc/passwd"])
def test_a_host_that_is_not_an_http_url_is_refused(host: str) -> None:
    proc = _bench("--host", host)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"error: --host {host!r}:"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_host_port_as_ollama_host_writes_it_is_taken_as_http(web_server: str) -> None:
    proc = _bench("--host", web_server.removeprefix("http://"), "--json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["hosts"][0]["checks"][0]["reason"].startswith(f"{web_server}/api/version: HTTP 404")


@pytest.mark.parametrize(("body", "detail"), [
    (b'{"error": "model \'m:1\' not found"}', "model 'm:1' not found"),
    (b'{"error": "line one\\n  line two"}', "line one line two"),
    (b'{"error": "' + b"x" * 400 + b'"}', "x" * 299 + "…"),
    (b"", "Bad Gateway (not an Ollama reply: 0 bytes)"),
    (b'{"error": ""}', "Bad Gateway (not an Ollama reply: 13 bytes)"),
    (b"\xff\xfe<HTML>", "Bad Gateway (not an Ollama reply: 8 bytes, HTML)"),
])
def test_http_error_detail(body: bytes, detail: str) -> None:
    assert http_error_detail(body, "Bad Gateway") == detail


def test_out_that_is_a_file_is_refused_before_benchmarking(tmp_path: Path) -> None:
    (tmp_path / "report").write_text("keep me")
    proc = _bench("--host", "http://127.0.0.1:9", "--out", str(tmp_path / "report"))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: --out {tmp_path / 'report'}: not a directory (report.json, report.md " \
                                  "and junit.xml go in it)"
    assert (tmp_path / "report").read_text() == "keep me"
