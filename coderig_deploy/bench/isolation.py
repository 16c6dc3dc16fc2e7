"""Where the code check may run a model's code: a namespace, as nobody, or not at all.

- ``netns`` (root): ``unshare --net --pid --fork --kill-child`` then ``setpriv`` to
  uid/gid 65534 (nobody). The network namespace has only a loopback that is down, so
  no connection leaves it; the PID namespace means every process the code starts dies
  with it, even one that called setsid().
- ``userns`` (not root, unprivileged user namespaces allowed): the same inside a new
  user namespace that maps the caller to uid/gid 65534, so the code holds no
  capability there either (``--map-root-user`` would make it root in the namespace).
- ``none``: neither works (no util-linux, no CAP_SYS_ADMIN, user namespaces off, or
  root without setpriv). The code check refuses to run the answer: a model's output
  is never run as root, nor without a network namespace.

Each mode is probed by running Python through the prefix and reading back its uid and
gid: a prefix is used only when the code really ends up as 65534.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

NOBODY = 65534
NONE = "none"
_PROBE = "import os; print(os.getuid(), os.geteuid(), os.getgid(), os.getegid())"


def python() -> str:
    """The interpreter the check runs (resolved: a venv's symlink may be unreadable)."""
    return os.path.realpath(sys.executable)


def runs_as_nobody(prefix: list[str]) -> bool:
    """True when Python started through `prefix` has uid and gid 65534, nothing else."""
    try:
        proc = subprocess.run([*prefix, python(), "-I", "-S", "-c", _PROBE],
                              capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and proc.stdout.split() == [str(NOBODY)] * 4


def netns_prefix(unshare: str, setpriv: str) -> list[str]:
    """Root: new network and PID namespaces, then uid/gid 65534 without groups."""
    return [unshare, "--net", "--pid", "--fork", "--kill-child", "--",
            setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def userns_prefix(unshare: str) -> list[str]:
    """Not root: a user namespace where the caller is 65534, with network and PID ones."""
    return [unshare, "--user", f"--map-user={NOBODY}", f"--map-group={NOBODY}",
            "--net", "--pid", "--fork", "--kill-child", "--"]


def detect() -> tuple[str, list[str]]:
    """The isolation this host allows and its command prefix; (``none``, []) if none.

    Root only ever gets ``netns``: a user namespace entered by root maps 65534 back to
    uid 0 outside, so files owned by root would still be the code's own.
    """
    unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
    if unshare is None:
        return NONE, []
    if os.geteuid() == 0:
        if setpriv and runs_as_nobody(prefix := netns_prefix(unshare, setpriv)):
            return "netns", prefix
        return NONE, []
    if runs_as_nobody(prefix := userns_prefix(unshare)):
        return "userns", prefix
    return NONE, []


def why_none() -> str:
    """One line on why no isolation is available, for the report."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return "setpriv (util-linux) is not installed"
        return "unshare --net --pid failed (no CAP_SYS_ADMIN in this container?)"
    return ("unprivileged user namespaces are not allowed here "
            "(or util-linux is older than 2.36: no --map-user)")
