"""`ollama serve`: a threaded HTTP server speaking Ollama's REST API (ollama.md)."""

from __future__ import annotations

import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable

from . import VERSION, faults as faults_mod
from .envconfig import Config
from .placement import Planner, find_catalog
from .scheduler import Scheduler, log
from .store import Store


class ApiError(Exception):
    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body  # the whole error document where an API shapes it otherwise (OpenAI's)


class Response:
    """A JSON body, or a stream of JSON lines (chunked, application/x-ndjson), or with
    `sse` a stream of Server-Sent Events (`data: <json>`; a str item is sent as is)."""

    def __init__(self, body: Any = None, status: int = 200, stream: Iterable[Any] | None = None,
                 sse: bool = False) -> None:
        self.body, self.status, self.stream, self.sse = body, status, stream, sse


class App:
    """Server state shared by request threads."""

    def __init__(self, config: Config) -> None:
        from . import handlers_generate, handlers_models, handlers_openai  # noqa: F401  (routes below)

        self.config = config
        self.store = Store(config.models)
        self.store.ensure()
        catalog = find_catalog(_env("CODERIG_SIM_CATALOG"))
        self.planner = Planner.from_file(catalog)
        constants = json.loads((Path(__file__).resolve().parent / "sim_constants.json").read_text())
        self.constants = constants
        self.scheduler = Scheduler(config, self.planner, constants)
        self._answers: dict[str, str] | None = None
        self.routes: dict[tuple[str, str], Callable[[App, dict[str, Any]], Response]] = {
            ("GET", "/api/version"): lambda app, body: Response({"version": VERSION}),
            ("GET", "/api/tags"): handlers_models.tags,
            ("POST", "/api/show"): handlers_models.show,
            ("POST", "/api/pull"): handlers_models.pull,
            ("POST", "/api/create"): handlers_models.create,
            ("POST", "/api/copy"): handlers_models.copy,
            ("DELETE", "/api/delete"): handlers_models.delete,
            ("GET", "/api/ps"): handlers_models.ps,
            ("POST", "/api/generate"): handlers_generate.generate,
            ("POST", "/api/chat"): handlers_generate.chat,
            ("POST", "/v1/chat/completions"): handlers_openai.chat_completions,
            ("GET", "/v1/models"): handlers_openai.models,
        }

    def code_answers(self) -> dict[str, str]:
        if self._answers is None:
            from .textgen import load_code_answers
            self._answers = load_code_answers()
        return self._answers

    def faults(self) -> faults_mod.Faults:
        try:
            return faults_mod.load(self.config.faults_file)
        except (ValueError, OSError) as exc:
            log(f'level=WARN msg="ignoring unreadable faults file: {exc}"')
            return faults_mod.Faults()


def _sse_event(item: Any) -> bytes:
    return b"data: " + (item if isinstance(item, str) else json.dumps(item)).encode() + b"\n\n"


def _env(name: str) -> str | None:
    import os
    return os.environ.get(name) or None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-sim"
    app: App

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log(f'msg="{self.command} {self.path}" status={args[1] if len(args) > 1 else ""}')

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"invalid character in request body: {exc}") from exc
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object")
        return data

    def _send_json(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        if self.close_connection:  # say so, or a keep-alive client reuses the socket this side closes
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _send_stream(self, status: int, lines: Iterable[Any], sse: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/event-stream" if sse else "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for item in lines:
                data = _sse_event(item) if sse else json.dumps(item).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
        finally:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path.startswith("/api/blobs/"):
                from .handlers_models import blob
                status = blob(self.app, self.command, path[len("/api/blobs/"):], self.rfile,
                              int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path in ("/", "") and self.command in ("GET", "HEAD"):
                raw = b"Ollama is running"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(raw)
                return
            body = self._body()
            route = self.app.routes.get((self.command, path))
            if route is None:
                raise ApiError(404, "404 page not found")
            response = route(self.app, body)
        except ApiError as exc:
            self.close_connection = True  # an unread request body must not leak into the next request
            self._send_json(exc.status, exc.body if exc.body is not None else {"error": str(exc)})
            return
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 like Ollama's recovery middleware
            log(f'level=ERROR msg="{self.command} {path}: {type(exc).__name__}: {exc}"')
            self.close_connection = True
            self._send_json(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        if response.stream is not None:
            self._send_stream(response.status, response.stream, response.sse)
        else:
            self._send_json(response.status, response.body)

    do_GET = do_POST = do_DELETE = do_HEAD = _dispatch


def serve(config: Config) -> int:
    """Run until interrupted; returns the process exit status."""
    app = App(config)
    if not config.noprune:
        removed = app.store.prune(min_age=3600)  # Ollama prunes unreferenced blobs older than 1 h
        if removed:
            log(f'msg="pruned {len(removed)} unreferenced blobs"')
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = ThreadingHTTPServer((config.host, config.port), handler)
    server.daemon_threads = True
    stop = threading.Event()
    # systemd stops the service with SIGTERM: shut down cleanly so usage.json is cleared.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    threading.Thread(target=app.scheduler.run_expiry, args=(stop,), daemon=True).start()
    app.scheduler.write_usage()
    log(f'msg="Listening on {config.host}:{config.port} (version {VERSION})" models={config.models}')
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        app.scheduler.clear_usage()
    return 0
