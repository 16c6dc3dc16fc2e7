"""The program the code check runs inside its namespace, as nobody (stdlib only).

It is copied next to ``answer.py`` (the model's code) and run with ``python3 -I -S``.
It never sees the expected results: the controller side (codecheck.py) keeps them.

1. It makes itself non-dumpable, then forks *before* reading its request. The fork
   (which runs the model's code) has /dev/null as stdin and stderr as stdout, and a
   same-uid process cannot ptrace a non-dumpable one nor open its /proc/<pid>/fd,
   mem or environ: the fork cannot read the request nor write this process's stdout.
2. This process reads the request (a per-run nonce and the calls to make) from stdin
   and hands only the calls to the fork over a pipe.
3. The fork runs the answer, evaluates each call and sends back plain values (repr of
   builtin types only) or the exception raised; then it exits.
4. This process prints one line, ``<nonce> <json>``, holding what the fork sent.

So a pass cannot be printed: results are values the controller compares, and only
the line carrying the nonce counts. An answer that prints a marker and calls
os._exit(0) leaves no results at all.
"""

import ctypes
import json
import os
import socket
import sys

PR_SET_DUMPABLE = 4
MAX_RESULTS = 1 << 20
MAX_DEPTH = 32


def _no_network(*args, **kwargs):
    raise OSError(101, "network disabled by the coderig code check")


def _guard():
    """A second line behind the network namespace: Python sockets raise."""
    import _socket

    socket.socket = _socket.socket = socket.create_connection = _no_network
    socket.socketpair = _no_network


def _plain(value, depth=0):
    """`value` rebuilt from exact builtin types only (no subclass, no custom __eq__)."""
    kind = type(value)
    if depth > MAX_DEPTH:
        raise ValueError("the result is nested too deeply")
    if kind in (bool, int, float, str, type(None)):
        return value
    if kind in (list, tuple):
        return kind(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    raise TypeError(f"returned a {kind.__name__}, not a plain value")


def _evaluate(calls, namespace):
    results = []
    for call in calls:
        try:
            results.append({"value": repr(_plain(eval(call, namespace)))})
        except BaseException as exc:  # noqa: B036 - SystemExit from the answer too
            results.append({"raised": [c.__name__ for c in type(exc).__mro__],
                            "message": str(exc)[:200]})
    return results


def _answer(calls_fd, results_fd):
    """In the fork: run the model's code, evaluate the calls, send the results."""
    try:
        with os.fdopen(calls_fd, encoding="utf-8") as fh:
            calls = json.loads(fh.read())
        namespace = {"__name__": "__answer__"}
        try:
            with open("answer.py", encoding="utf-8") as fh:
                exec(compile(fh.read(), "answer.py", "exec"), namespace)
            payload = _evaluate(calls, namespace)
        except BaseException as exc:  # noqa: B036
            payload = {"load_error": f"{type(exc).__name__}: {exc}"[:300]}
        data = json.dumps(payload).encode()
        while data:
            data = data[os.write(results_fd, data[:65536]):]
    finally:
        os._exit(0)


def main():
    _guard()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        sys.exit("coderig code check: cannot make the harness non-dumpable")
    calls_r, calls_w = os.pipe()
    results_r, results_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(calls_w)
        os.close(results_r)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(2, 1)
        _answer(calls_r, results_w)
    os.close(calls_r)
    os.close(results_w)
    request = json.loads(sys.stdin.readline())
    try:
        os.write(calls_w, json.dumps(request["calls"]).encode())
    except BrokenPipeError:
        pass
    os.close(calls_w)
    with os.fdopen(results_r, "rb") as fh:
        data = fh.read(MAX_RESULTS + 1)
    _, status = os.waitpid(pid, 0)
    report = {"exit": os.waitstatus_to_exitcode(status),
              "results": data[:MAX_RESULTS].decode("utf-8", "replace")}
    sys.stdout.write(f"{request['nonce']} {json.dumps(report)}\n")


if __name__ == "__main__":
    main()
