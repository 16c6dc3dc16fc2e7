#!/usr/bin/env python3
"""Pull a model through Ollama's /api/pull stream and keep a progress file up to date.

Runs on the host with its own python3 (stdlib only). The progress file is one JSON
object, rewritten atomically about once a second:
    {"status": "pulling 4bd6cbf2d094", "completed": 123, "total": 456, "done": false,
     "run": "<run id>", "pid": 4242, "started": <the process's start time in clock ticks>}
and finally {"done": true, "status": "success"} or {"done": true, "error": "..."}.
Exit status 0 on success, 1 on an error. Stream lines: ollama.md, REST API.

`--show` prints the progress of the pull of one run for the role's wait loop: a file
left by another run counts as "not started yet", and a pull whose process is gone
without a final line (killed at its time limit) is reported done, with an error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request


def start_ticks(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat), None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


class Progress:
    """The progress file of one run's pull; every document names the run and the process."""

    def __init__(self, path: str, run: str) -> None:
        self.path, self.run = path, run
        self.me = {"run": run, "pid": os.getpid(), "started": start_ticks(os.getpid())}

    def write(self, state: dict) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({**state, **self.me}, handle)
        os.replace(tmp, self.path)


class Deadline(Exception):
    """The pull ran past --deadline seconds."""


def _deadline(signum: int, frame: object) -> None:
    raise Deadline


def show(path: str, run: str) -> dict:
    """The progress of `run`'s pull as the wait loop should see it."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict) or doc.get("run") != run:  # absent, torn, or an earlier run's
        return {"status": "waiting for the pull to start", "done": False, "run": run}
    if not doc.get("done") and start_ticks(int(doc.get("pid") or 0)) != doc.get("started"):
        return {**doc, "done": True, "error": f"the pull process (pid {doc.get('pid')}) ended before the pull "
                                              "finished; it was killed, e.g. at its time limit (models_pull_timeout)"}
    return doc


def pull(url: str, model: str, insecure: bool, progress: Progress) -> dict:
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
                progress.write(state)
                last = time.monotonic()
    if state["status"] != "success":
        return {"done": True, "error": f"stream ended with {state['status']!r}, not success"}
    return {**state, "done": True}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--model")
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--progress", required=True)
    parser.add_argument("--run-id", default="", help="the run this pull belongs to")
    parser.add_argument("--show", action="store_true", help="print the run's pull progress and exit")
    parser.add_argument("--deadline", type=int, default=0, help="give up after this many seconds (0: never)")
    args = parser.parse_args()
    if args.show:
        json.dump(show(args.progress, args.run_id), sys.stdout)
        return 0
    if not args.url or not args.model:
        parser.error("--url and --model are required for a pull")
    progress = Progress(args.progress, args.run_id)
    progress.write({"status": "starting", "completed": 0, "total": 0, "done": False})
    if args.deadline > 0:
        signal.signal(signal.SIGALRM, _deadline)
        signal.alarm(args.deadline)
    try:
        final = pull(args.url, args.model, args.insecure, progress)
    except Deadline:
        final = {"done": True, "error": f"the pull did not finish within {args.deadline} s (models_pull_timeout)"}
    except urllib.error.HTTPError as exc:  # an error answer carries {"error": "..."}
        try:
            final = {"done": True, "error": str(json.loads(exc.read())["error"])}
        except (ValueError, KeyError, OSError):
            final = {"done": True, "error": f"HTTP {exc.code} {exc.reason}"}
    except (OSError, ValueError) as exc:
        final = {"done": True, "error": f"{type(exc).__name__}: {exc}"}
    signal.alarm(0)
    progress.write(final)
    return 0 if "error" not in final else 1


if __name__ == "__main__":
    sys.exit(main())
