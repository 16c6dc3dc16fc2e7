"""bundle_sync_stream: one bundle piece to the host, read once on each side.

ansible.builtin.copy hashes the file on the controller and on the host, and a
sha256 stat after it reads the copy a third time; for a 20 GB model blob those
reads cost as much as the transfer. Here the controller hands the open file to
ssh as its stdin (no copy through Python, nothing held in memory), with the
command line Ansible's own ssh connection builds for this host (ansible.cfg
ssh_args, control socket, StrictHostKeyChecking, the run's known_hosts, key,
user, port), and a small receiver on the host (as root, through the task's
become) writes the bytes to a new file beside the destination while hashing
them. Only when the size and the sha256 match the verified bundle's is the file
given its owner and mode, renamed into place and its marker written; otherwise
it is removed and nothing is installed from it.

Connections: OpenSSH (ansible.builtin.ssh) and local. Password logins and
become passwords are refused: the piece itself is on ssh's stdin, so nothing
could answer a prompt.
"""

from __future__ import annotations

import os
import shlex
import subprocess

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

# Run by the host's Python as root. The partial file is created afresh with
# O_EXCL|O_NOFOLLOW: its directory may belong to the service user, who must not
# be able to point the root-owned write elsewhere with a planted link.
RECEIVER = r"""
import grp, hashlib, os, pwd, sys
partial, dest, marker, want, size, owner, group, mode = sys.argv[1:9]
size, mode = int(size), int(mode, 8)
uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
try:
    os.unlink(partial)
except FileNotFoundError:
    pass
fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
digest, got, done = hashlib.sha256(), 0, False
buf = bytearray(1 << 20)
view = memoryview(buf)
try:
    while True:
        n = os.readv(0, [buf])
        if not n:
            break
        got += n
        if got > size:
            sys.exit(f"{dest}: more than the bundle's {size} bytes arrived; nothing was installed from them")
        digest.update(view[:n])
        sent = 0
        while sent < n:
            sent += os.write(fd, view[sent:n])
    if got != size:
        sys.exit(f"{dest}: {got} of the bundle's {size} bytes arrived; nothing was installed from them")
    if digest.hexdigest() != want:
        sys.exit(f"{dest}: the copy on the host has sha256 {digest.hexdigest()}, the verified bundle "
                 f"says {want}; nothing was installed from it")
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
    os.close(fd)
    fd = -1
    os.rename(partial, dest)
    done = True
finally:
    if fd >= 0:
        os.close(fd)
    if not done:
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
with open(marker + ".tmp", "w") as out:
    out.write(f"{size} {dest}\n")
os.chmod(marker + ".tmp", 0o600)
os.rename(marker + ".tmp", marker)
print("stored " + want)
"""

ARGS = {
    "src": {"type": "path", "required": True},
    "dest": {"type": "str", "required": True},
    "partial": {"type": "str", "required": True},
    "marker": {"type": "str", "required": True},
    "sha256": {"type": "str", "required": True},
    "size": {"type": "int", "required": True},
    "owner": {"type": "str", "required": True},
    "group": {"type": "str", "required": True},
    "mode": {"type": "str", "default": "0644"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # the piece goes over ssh's stdin, not through a remote temp dir

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGS)
        if not os.path.isfile(args["src"]) or os.path.getsize(args["src"]) != args["size"]:
            raise AnsibleActionFail(f"{args['src']}: not a file of the bundle's {args['size']} bytes")
        if self._task.check_mode:
            return {**result, "changed": True, "msg": f"{args['dest']} would be copied"}
        argv = self._transport(self._receiver_command(args, task_vars or {}))
        with open(args["src"], "rb") as piece:
            proc = subprocess.run(argv, stdin=piece, capture_output=True, check=False)
        out, err = to_text(proc.stdout).strip(), to_text(proc.stderr).strip()
        if proc.returncode != 0 or not out.endswith("stored " + args["sha256"]):
            last = err.splitlines()[-1] if err else f"exit {proc.returncode}"
            raise AnsibleActionFail(f"streaming {args['dest']} failed: {last}")
        return {**result, "changed": True, "dest": args["dest"], "sha256": args["sha256"], "size": args["size"]}

    def _receiver_command(self, args: dict, task_vars: dict) -> str:
        """The receiver's command line, wrapped in the task's become (passwordless only)."""
        python = self._python(task_vars)
        cmd = shlex.join([python, "-I", "-c", RECEIVER, args["partial"], args["dest"], args["marker"],
                          args["sha256"], str(args["size"]), args["owner"], args["group"], args["mode"]])
        become = self._connection.become
        if become is not None and self._play_context.become:
            cmd = become.build_become_command(cmd, self._connection._shell)
            if become.expect_prompt():
                raise AnsibleActionFail("bundle_sync streams pieces through become without a password "
                                        "(the piece is on the command's stdin): give this user passwordless sudo")
        executable = self._play_context.executable or "/bin/sh"
        return f"{executable} -c {shlex.quote(cmd)}"

    def _python(self, task_vars: dict) -> str:
        configured = self._templar.template(task_vars.get("ansible_python_interpreter") or "")
        if configured and not str(configured).startswith("auto"):
            return str(configured)
        return task_vars.get("ansible_facts", {}).get("discovered_interpreter_python") or "/usr/bin/python3"

    def _transport(self, remote: str) -> list:
        """The controller-side command: Ansible's own ssh command line for this host, or a local shell."""
        conn = self._connection
        transport = conn.transport.rsplit(".", 1)[-1]
        if transport == "local":
            return ["/bin/sh", "-c", remote]
        if transport != "ssh":
            raise AnsibleActionFail(f"bundle_sync streams pieces over OpenSSH (ansible_connection=ssh) or "
                                    f"locally; this host uses {conn.transport}")
        if conn.get_option("password") or self._play_context.password:
            raise AnsibleActionFail("bundle_sync streams pieces over key-based SSH; this host logs in with a "
                                    "password (the piece is on ssh's stdin): use a key")
        conn.host = conn.get_option("host") or self._play_context.remote_addr  # as its exec_command sets it
        # No -tt: the piece's bytes must pass unaltered, and ssh gets no terminal.
        return conn._build_command(conn.get_option("ssh_executable"), "ssh", conn.host, remote)
