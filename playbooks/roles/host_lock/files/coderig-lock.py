#!/usr/bin/env python3
"""One apply at a time per host: an flock under /run held by a small holder process.

Runs on the host with its own python3 (stdlib only), through ansible.builtin.script.

    coderig-lock.py acquire --path P --run R --controller C --controller-pid N --wait S --lease L [--break PID:TICKS]
    coderig-lock.py release --path P --holder PID:TICKS
    coderig-lock.py status  --path P

`acquire` takes the lock (waiting up to S seconds), then forks a detached holder that
keeps it until `release` stops it or L seconds pass (a run that died without
releasing blocks the host no longer than that; /run empties on a reboot too). The
owner (run, controller, its pid, start time, holder) goes to P.owner.json. Every
command prints one JSON object; acquire exits 0 when the lock is ours, 1 when
another apply holds it (the object then names that apply as "owner").
`--break` first stops a holder the caller found stale (its apply is gone).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime


def start_ticks(pid: int) -> int | None:
    """The process's start time (field 22 of /proc/PID/stat); None when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def read_owner(path: str) -> dict:
    try:
        with open(path + ".owner.json", encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_owner(path: str, owner: dict) -> None:
    tmp = f"{path}.owner.json.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(owner, handle)
    os.replace(tmp, path + ".owner.json")


def stop_holder(token: str, timeout: float = 10.0) -> bool:
    """Stop the holder `PID:TICKS` if it is still that process; True when it is gone."""
    pid_text, _, ticks_text = token.partition(":")
    pid, ticks = int(pid_text or 0), int(ticks_text or -1)
    if pid <= 1 or start_ticks(pid) != ticks:
        return True  # already gone, or the pid now belongs to another process
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while start_ticks(pid) == ticks and time.monotonic() < deadline:
        time.sleep(0.1)
    return start_ticks(pid) != ticks


def open_lock(path: str) -> int:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


def try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def hold(fd: int, lease: int) -> None:
    """The holder: detached from the SSH session, it keeps `fd` (the lock) until told or the lease ends."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    os.closerange(3, fd)
    os.closerange(fd + 1, 1024)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    time.sleep(lease)
    os._exit(0)


def acquire(args: argparse.Namespace) -> tuple[int, dict]:
    if args.break_holder:
        stop_holder(args.break_holder)
    fd = open_lock(args.path)
    deadline = time.monotonic() + args.wait
    while not try_lock(fd):
        if time.monotonic() >= deadline:
            return 1, {"acquired": False, "waited": args.wait, "owner": read_owner(args.path)}
        time.sleep(1.0)
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pid = os.fork()
    if pid == 0:
        hold(fd, args.lease)
    os.close(fd)
    token = f"{pid}:{start_ticks(pid)}"
    owner = {"run": args.run, "controller": args.controller, "controller_id": args.controller_id,
             "controller_pid": args.controller_pid, "started": started, "lease": args.lease, "holder": token}
    write_owner(args.path, owner)
    return 0, {"acquired": True, "holder": token, "owner": owner}


def release(args: argparse.Namespace) -> tuple[int, dict]:
    owner = read_owner(args.path)
    gone = stop_holder(args.holder)
    if gone and owner.get("holder") == args.holder:
        try:
            os.unlink(args.path + ".owner.json")
        except FileNotFoundError:
            pass
    return 0, {"released": gone}


def status(args: argparse.Namespace) -> tuple[int, dict]:
    """Whether an apply holds the lock now, and which one."""
    owner = read_owner(args.path)
    token = str(owner.get("holder", ""))
    pid, _, ticks = token.partition(":")
    held = bool(pid) and start_ticks(int(pid)) == int(ticks or -1)
    return 0, {"held": held, "owner": owner if held else {}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["acquire", "release", "status"])
    parser.add_argument("--path", required=True)
    parser.add_argument("--run", default="")
    parser.add_argument("--controller", default="")
    parser.add_argument("--controller-id", default="")
    parser.add_argument("--controller-pid", type=int, default=0)
    parser.add_argument("--wait", type=int, default=0)
    parser.add_argument("--lease", type=int, default=21600)
    parser.add_argument("--break", dest="break_holder", default="")
    parser.add_argument("--holder", default="")
    args = parser.parse_args()
    code, doc = {"acquire": acquire, "release": release, "status": status}[args.command](args)
    json.dump(doc, sys.stdout)
    sys.stdout.write("\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
