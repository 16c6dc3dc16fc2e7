"""The `ollama` command: `serve`, and client verbs that talk to the server over HTTP
as the real CLI does (--version, list, ps, pull, create -f, cp, rm, run, stop, show)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from . import VERSION, envconfig, modelfile


class CliError(Exception):
    pass


def _base() -> str:
    host, port = envconfig.parse_host(os.environ.get("OLLAMA_HOST"))
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def _request(method: str, path: str, body: Any = None, data: bytes | None = None) -> Any:
    raw = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(_base() + path, data=raw, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        return urllib.request.urlopen(request, timeout=3600)
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise CliError(str(message)) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise CliError("could not connect to ollama server, run 'ollama serve' to start it") from exc


def _json(method: str, path: str, body: Any = None) -> Any:
    with _request(method, path, body) as response:
        return json.loads(response.read() or b"{}")


def _lines(path: str, body: Any) -> Iterator[dict[str, Any]]:
    with _request("POST", path, body) as response:
        for line in response:
            if line.strip():
                item = json.loads(line)
                if "error" in item:
                    raise CliError(item["error"])
                yield item


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 10 else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"


def _ago(iso: str) -> str:
    from datetime import datetime
    seconds = max(time.time() - datetime.fromisoformat(iso).timestamp(), 0)
    for unit, span in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= span:
            n = int(seconds // span)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "Less than a second ago" if seconds < 1 else f"{int(seconds)} seconds ago"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("    ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def processor(size: int, size_vram: int) -> str:
    """`ollama ps` PROCESSOR column (ollama.md, /api/ps)."""
    if size_vram >= size:
        return "100% GPU"
    if size_vram == 0:
        return "100% CPU"
    cpu = round((size - size_vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def cmd_version(_: argparse.Namespace) -> int:
    try:
        print(f"ollama version is {_json('GET', '/api/version')['version']}")
    except CliError:
        print("Warning: could not connect to a running Ollama instance")
        print(f"Warning: client version is {VERSION}")
    return 0


def cmd_list(_: argparse.Namespace) -> int:
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for m in _json("GET", "/api/tags")["models"]:
        rows.append([m["name"], m["digest"][:12], human_bytes(m["size"]), _ago(m["modified_at"])])
    print(_table(rows))
    return 0


def cmd_ps(_: argparse.Namespace) -> int:
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]
    for m in _json("GET", "/api/ps")["models"]:
        from datetime import datetime
        left = datetime.fromisoformat(m["expires_at"]).timestamp() - time.time()
        until = "Forever" if left > 100 * 365 * 86400 else f"{max(int(left // 60), 0)} minutes from now"
        rows.append([m["name"], m["digest"][:12], human_bytes(m["size"]),
                     processor(m["size"], m.get("size_vram", 0)), str(m.get("context_length", "")), until])
    print(_table(rows))
    return 0


def _progress(lines: Iterator[dict[str, Any]]) -> int:
    """Print each status once; a layer's line when it completes (no terminal bars)."""
    seen: set[str] = set()
    for item in lines:
        status = item.get("status", "")
        if item.get("digest"):
            if item.get("total") and item.get("completed") == item.get("total") and status not in seen:
                seen.add(status)
                print(f"{status}: 100% {human_bytes(item['total'])}")
        elif status not in seen:
            seen.add(status)
            print(status)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    return _progress(_lines("/api/pull", {"model": args.model, "insecure": args.insecure, "stream": True}))


def cmd_create(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        request = modelfile.parse(path.read_text())
    except (OSError, modelfile.ModelfileError) as exc:
        raise CliError(str(exc)) from exc
    source = request.pop("from")
    candidate = (path.parent / source).expanduser()
    if source.endswith(".gguf") or candidate.is_file():
        request["files"] = {candidate.name: _upload(candidate)}
    else:
        request["from"] = source
    request.update(model=args.model, stream=True)
    return _progress(_lines("/api/create", request))


def _upload(path: Path) -> str:
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        _request("HEAD", f"/api/blobs/{digest}").close()
    except CliError:
        _request("POST", f"/api/blobs/{digest}", data=path.read_bytes()).close()
    return digest


def cmd_rm(args: argparse.Namespace) -> int:
    for name in args.models:
        _request("DELETE", "/api/delete", {"model": name}).close()
        print(f"deleted '{name}'")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    _json("POST", "/api/generate", {"model": args.model, "keep_alive": 0})
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    info = _json("POST", "/api/show", {"model": args.model})
    print(info["modelfile"] if args.modelfile else info["parameters"] if args.parameters else json.dumps(info, indent=2))
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    _request("POST", "/api/copy", {"source": args.source, "destination": args.destination}).close()
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Non-interactive `ollama run MODEL PROMPT`; --verbose prints the timings like the real CLI."""
    prompt = " ".join(args.prompt) or (sys.stdin.read() if not sys.stdin.isatty() else "")
    final: dict[str, Any] = {}
    for final in _lines("/api/generate", {"model": args.model, "prompt": prompt, "stream": True}):
        print(final.get("response", ""), end="", flush=True)
    print()
    if args.verbose and final.get("eval_duration"):
        rate = final["eval_count"] / final["eval_duration"] * 1e9
        print(f"total duration:       {final.get('total_duration', 0) / 1e9:.6f}s\n"
              f"load duration:        {final.get('load_duration', 0) / 1e9:.6f}s\n"
              f"prompt eval count:    {final.get('prompt_eval_count', 0)} token(s)\n"
              f"eval count:           {final['eval_count']} token(s)\n"
              f"eval rate:            {rate:.2f} tokens/s", file=sys.stderr)
    return 0


def cmd_serve(_: argparse.Namespace) -> int:
    from .server import serve
    return serve(envconfig.from_env())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ollama", description="Large language model runner (coderig simulator)")
    root.add_argument("-v", "--version", action="store_true", help="Show version information")
    sub = root.add_subparsers(dest="command")
    sub.add_parser("serve", help="Start ollama").set_defaults(func=cmd_serve)
    for name in ("list", "ls"):
        sub.add_parser(name, help="List models").set_defaults(func=cmd_list)
    sub.add_parser("ps", help="List running models").set_defaults(func=cmd_ps)
    pull = sub.add_parser("pull", help="Pull a model from a registry")
    pull.add_argument("--insecure", action="store_true", help="Use an insecure registry")
    pull.add_argument("model")
    pull.set_defaults(func=cmd_pull)
    create = sub.add_parser("create", help="Create a model from a Modelfile")
    create.add_argument("model")
    create.add_argument("-f", "--file", default="Modelfile")
    create.set_defaults(func=cmd_create)
    rm = sub.add_parser("rm", help="Remove a model")
    rm.add_argument("models", nargs="+")
    rm.set_defaults(func=cmd_rm)
    stop = sub.add_parser("stop", help="Stop a running model")
    stop.add_argument("model")
    stop.set_defaults(func=cmd_stop)
    cp = sub.add_parser("cp", help="Copy a model")
    cp.add_argument("source")
    cp.add_argument("destination")
    cp.set_defaults(func=cmd_cp)
    run = sub.add_parser("run", help="Run a model (non-interactive)")
    run.add_argument("model")
    run.add_argument("prompt", nargs="*")
    run.add_argument("--verbose", action="store_true")
    run.set_defaults(func=cmd_run)
    show = sub.add_parser("show", help="Show information for a model")
    show.add_argument("model")
    show.add_argument("--modelfile", action="store_true")
    show.add_argument("--parameters", action="store_true")
    show.set_defaults(func=cmd_show)
    return root


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.version:
        return cmd_version(args)
    if not getattr(args, "func", None):
        parser().print_help()
        return 0
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
