"""Where a profile may point the Ollama model store.

The ollama role makes `models_dir` belong to the service user, so a profile that
names a system directory would hand that tree to `ollama` (owning
/etc/systemd/system is root). A store path must therefore be absolute, written
in normal form, and outside the trees below. The role itself also refuses to
take over an existing, non-empty directory it did not create (tasks/user.yml),
so a path that passes here still cannot steal a user's data.
"""

from __future__ import annotations

import posixpath

# The tree itself and everything under it is refused.
DENIED_TREES = (
    "/bin", "/boot", "/dev", "/efi", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
    "/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/tmp", "/usr",
    "/var/backups", "/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/systemd",
    "/var/local", "/var/lock", "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
)
# Only the directory itself is refused; a dedicated subdirectory (/srv/ollama) is fine.
DENIED_EXACT = ("/", "/home", "/media", "/mnt", "/opt", "/srv", "/var", "/var/lib", "/data")
# Ollama's own home (the role creates it for the service user) is the one place under /usr.
ALLOWED_TREES = ("/usr/share/ollama",)


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def store_path_problem(path: str) -> str | None:
    """Why `path` cannot be the model store, or None when it can."""
    if not path.startswith("/"):
        return "must be an absolute path"
    normal = "/" + posixpath.normpath(path).lstrip("/")
    if normal != path:
        return f"must be written in normal form, here {normal!r} (no '.', '..', '//' or trailing '/')"
    if any(_under(path, tree) for tree in ALLOWED_TREES) and path not in ALLOWED_TREES:
        return None
    if path in DENIED_EXACT:
        return f"{path} is a shared system directory; name a dedicated subdirectory such as /srv/ollama/models"
    tree = next((t for t in DENIED_TREES if _under(path, t)), None)
    if tree is not None:
        return f"{path} is inside the system tree {tree}; use e.g. /var/lib/ollama or /srv/ollama/models"
    parts = path.strip("/").split("/")
    if parts[0] == "home" and len(parts) == 2:
        return f"{path} is a user's home directory; name a subdirectory of it"
    return None
