"""The environment ansible-playbook runs with: an allow-list, not the controller's whole one.

ansible-runner seeds its job environment with os.environ and writes all of it into
artifacts/<ident>/command, so a GITHUB_TOKEN or a proxy password set on the
controller would land in every run directory. Only what Ansible and OpenSSH need
passes: PATH, HOME, the user and locale, TERM, the SSH agent socket, a private
temp dir, and proxy variables with their credentials stripped (no role reads them;
a URL with a password in it would be a secret in the artifacts).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

ALLOWED = frozenset({"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
                     "SSH_AUTH_SOCK", "XDG_RUNTIME_DIR", "no_proxy", "NO_PROXY"})
PROXIES = frozenset({"http_proxy", "https_proxy", "ftp_proxy", "all_proxy",
                     "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY"})


def strip_credentials(url: str) -> str | None:
    """`url` without user:password@, or None when it cannot be read as a URL."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def allowed(environ: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed part of `environ`, proxies without credentials."""
    env = {k: v for k, v in environ.items() if k in ALLOWED or k.startswith("LC_")}
    for name in PROXIES & environ.keys():
        clean = strip_credentials(environ[name])
        if clean is not None:
            env[name] = clean
    return env


def job_env(runner_env: Mapping[str, str], controller: Mapping[str, str],
            ours: Mapping[str, str]) -> dict[str, str]:
    """The job environment: allow-listed controller variables, what ansible-runner itself
    added or changed (ANSIBLE_CALLBACK_PLUGINS, AWX_ISOLATED_DATA_DIR, ...), and ours."""
    added = {k: v for k, v in runner_env.items() if controller.get(k) != v}
    return {**allowed(controller), **added, **ours}
