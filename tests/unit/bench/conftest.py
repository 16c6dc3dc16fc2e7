"""A canned Ollama for unit tests of the HTTP client and the benchmark flow.

Integration tests use the real simulator on sandbox hosts; this stub only serves
fixed documents so the client's handling of each reply shape can be pinned down.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

GIB = 2**30


class StubOllama:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.ps: dict[str, Any] = {"models": []}
        self.eval_count = 128
        self.answer_code = "def is_palindrome(text):\n    c = [x.lower() for x in text if x.isalnum()]\n    return c == c[::-1]\n"
        self.url = ""

    def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        if "prompt" not in body:  # preload
            self.ps = {"models": [{"name": body["model"], "model": body["model"], "size": 20 * GIB,
                                   "size_vram": 20 * GIB, "context_length": 32768}]}
            return {"model": body["model"], "response": "", "done": True, "done_reason": "load",
                    "load_duration": 2_500_000_000, "total_duration": 2_600_000_000}
        if "def is_palindrome" in body["prompt"]:
            return {"response": f"```python\n{self.answer_code}```", "done": True,
                    "done_reason": "stop", "eval_count": 30, "eval_duration": 10**9,
                    "total_duration": 10**9}
        return {"response": "x", "done": True, "done_reason": "length",
                "prompt_eval_count": 200, "prompt_eval_duration": 100_000_000,
                "eval_count": self.eval_count, "eval_duration": 4 * 10**9,
                "total_duration": 4_100_000_000}


@pytest.fixture
def stub_ollama():
    stub = StubOllama()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, obj: Any, code: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            stub.requests.append((self.path, {}))
            self._send({"version": "0.33.0"} if self.path == "/api/version" else stub.ps)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stub.requests.append((self.path, body))
            if body["model"] == "missing:1":
                return self._send({"error": "model 'missing:1' not found"}, 404)
            final = stub.generate(body)
            if not body.get("stream", True) or "prompt" not in body:
                return self._send(final)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            for piece in ("Hel", "lo"):
                self.wfile.write(json.dumps({"response": piece, "done": False}).encode() + b"\n")
                self.wfile.flush()
            self.wfile.write(json.dumps({**final, "response": ""}).encode() + b"\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()
