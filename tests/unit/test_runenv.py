"""The job environment is an allow-list; proxy credentials are stripped."""

from __future__ import annotations

import pytest

from coderig_deploy import runenv

CONTROLLER = {
    "PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm",
    "SSH_AUTH_SOCK": "/run/user/1000/agent", "USER": "u",
    "GITHUB_TOKEN": "ghp_FAKE", "AWS_SECRET_ACCESS_KEY": "FAKEAWS", "ANSIBLE_HOST_KEY_CHECKING": "False",
    "ANSIBLE_VAULT_PASSWORD": "x", "http_proxy": "http://user:S3CRET@proxy:3128",
    "HTTPS_PROXY": "https://S3CRET@proxy.lan:8443/", "no_proxy": "localhost,10.0.0.0/8",
}


def test_only_allow_listed_variables_pass() -> None:
    env = runenv.allowed(CONTROLLER)
    assert set(env) == {"PATH", "HOME", "LANG", "LC_ALL", "TERM", "SSH_AUTH_SOCK", "USER",
                        "http_proxy", "HTTPS_PROXY", "no_proxy"}
    assert "S3CRET" not in repr(env) and "FAKE" not in repr(env)


@pytest.mark.parametrize(("url", "clean"), [
    ("http://user:S3CRET@proxy:3128", "http://proxy:3128"),
    ("https://S3CRET@proxy.lan:8443/", "https://proxy.lan:8443/"),
    ("proxy.lan:3128", "http://proxy.lan:3128"),
    ("http://proxy.lan:3128/?token=S3CRET#x", "http://proxy.lan:3128/"),
    ("http://u:p@[::1]:3128", "http://[::1]:3128"),
    ("http://proxy:notaport", None),
    ("", None),
])
def test_proxy_credentials_are_stripped(url: str, clean: str | None) -> None:
    assert runenv.strip_credentials(url) == clean


def test_job_env_keeps_what_runner_added_and_ours_but_not_the_controller_rest() -> None:
    runner_env = {**CONTROLLER, "ANSIBLE_STDOUT_CALLBACK": "awx_display", "AWX_ISOLATED_DATA_DIR": "/r/a",
                  "ANSIBLE_HOST_KEY_CHECKING": "True"}
    ours = {"ANSIBLE_HOST_KEY_CHECKING": "True", "PATH": "/venv/bin:/usr/bin"}
    env = runenv.job_env(runner_env, CONTROLLER, ours)
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "awx_display" and env["AWX_ISOLATED_DATA_DIR"] == "/r/a"
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True" and env["PATH"] == "/venv/bin:/usr/bin"
    assert "GITHUB_TOKEN" not in env and "ANSIBLE_VAULT_PASSWORD" not in env
    assert env["http_proxy"] == "http://proxy:3128"
