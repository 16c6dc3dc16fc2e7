#!/usr/bin/env python3
"""Pull a model through Ollama's /api/pull stream and keep a progress file up to date.

Runs on the host with its own python3 (stdlib only). The progress file is one JSON
object, rewritten atomically about once a second:
    {"status": "pulling 4bd6cbf2d094", "completed": 123, "total": 456, "done": false}
and finally {"done": true, "status": "success"} or {"done": true, "error": "..."}.
Exit status 0 on success, 1 on an error. Stream lines: ollama.md, REST API.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def write(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(tmp, path)


def pull(url: str, model: str, insecure: bool, progress: str) -> dict:
    body = json.dumps({"model": model, "insecure": insecure, "stream": True}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/api/pull", data=body,
                                     headers={"Content-Type": "application/json"})
    layers: dict[str, tuple[int, int]] = {}
    state: dict = {"status": "starting", "completed": 0, "total": 0, "done": False}
    last = 0.0
    with urllib.request.urlopen(request, timeout=600) as response:
        for raw in response:
            line = json.loads(raw) if raw.strip() else {}
            if "error" in line:
                return {"done": True, "error": str(line["error"])}
            if line.get("digest"):  # "completed" may be missing at first
                layers[line["digest"]] = (int(line.get("completed") or 0), int(line.get("total") or 0))
            state = {"status": line.get("status", state["status"]), "done": False,
                     "completed": sum(c for c, _ in layers.values()), "total": sum(t for _, t in layers.values())}
            if time.monotonic() - last > 1.0:
                write(progress, state)
                last = time.monotonic()
    if state["status"] != "success":
        return {"done": True, "error": f"stream ended with {state['status']!r}, not success"}
    return {**state, "done": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--progress", required=True)
    args = parser.parse_args()
    write(args.progress, {"status": "starting", "completed": 0, "total": 0, "done": False})
    try:
        final = pull(args.url, args.model, args.insecure, args.progress)
    except urllib.error.HTTPError as exc:  # an error answer carries {"error": "..."}
        try:
            final = {"done": True, "error": str(json.loads(exc.read())["error"])}
        except (ValueError, KeyError, OSError):
            final = {"done": True, "error": f"HTTP {exc.code} {exc.reason}"}
    except (OSError, ValueError) as exc:
        final = {"done": True, "error": f"{type(exc).__name__}: {exc}"}
    write(args.progress, final)
    return 0 if "error" not in final else 1


if __name__ == "__main__":
    sys.exit(main())
