"""Every host:port a user gives is read one way: ports 1-65535, IPv6 addresses in brackets.

Profile fields (ollama.host, model_registry), --model-registry, and the HOST arguments of
render, apply and editor-config; each case runs the real command line through `main()`.
"""

from __future__ import annotations

import json
import sys

import pytest

from coderig_deploy.apply import ApplyRequest, write_editor_config
from coderig_deploy.profiles import load_profile
from coderig_deploy.targets import as_argument, from_argument
from tests.unit.foundation.test_bad_inputs import BASE, assert_bad, cli, profile


# --- ports are 1-65535 ------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["0", "65536", "99999"])
@pytest.mark.parametrize(("text", "field"), [("ollama: {host: '127.0.0.1:%s'}", "ollama.host"),
                                              ("ollama: {host: '[::1]:%s'}", "ollama.host"),
                                              ("model_registry: 'mirror.lan:%s'", "model_registry")])
def test_a_profile_port_outside_1_to_65535_is_refused(tmp_path, capsys, monkeypatch, port, text, field):
    path = profile(tmp_path, BASE + text % port + "\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, f"mine.yaml:3: {field}: ")
    assert f"port {int(port)} is not a TCP port (1-65535)" in out + err


@pytest.mark.parametrize("port", ["1", "65535"])
def test_the_ends_of_the_port_range_are_fine(tmp_path, capsys, monkeypatch, port):
    path = profile(tmp_path, BASE + f"ollama: {{host: '127.0.0.1:{port}'}}\nmodel_registry: 'mirror.lan:{port}'\n")
    code, out, _ = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert code == 0, out


@pytest.mark.parametrize("registry", ["mirror.lan:0", "mirror.lan:65536"])
def test_a_model_registry_option_outside_the_port_range_is_refused(tmp_path, capsys, monkeypatch, registry):
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "ws1",
                         "--model-registry", registry, "--model-digest", "sha256:" + "a" * 64,
                         "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, f"--model-registry: '{registry}': port {int(registry.split(':')[1])} "
                               "is not a TCP port (1-65535)")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("host", "port"), [("ws1:0", 0), ("root@ws1:65536", 65536), ("[fd00::5]:99999", 99999)])
def test_a_host_argument_outside_the_port_range_is_refused(tmp_path, capsys, monkeypatch, host, port):
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", host, "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, f"host {host!r}: port {port} is not a TCP port (1-65535)")


# --- editor-config reads hosts as apply does, and writes IPv6 URLs with brackets ---------------

def _editor_config(capsys, monkeypatch, prof: str, host: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, out, err = cli(capsys, monkeypatch, "editor-config", "--profile", prof, host, "--editor", "vscode", "--json")
    return code, (json.loads(out) if code == 0 else {}), out + err


@pytest.mark.parametrize(("host", "message"), [
    ("ws1:99999", "host 'ws1:99999': port 99999 is not a TCP port (1-65535)"),
    ("ws1:0", "host 'ws1:0': port 0 is not a TCP port (1-65535)"),
    ("fe80::1", "cannot read host 'fe80::1': use [user@]host[:port], an IPv6 address in brackets"),
    ("ws1;id", "'ws1;id' is not a valid host name or IP address"),
])
def test_editor_config_refuses_a_host_apply_refuses(tmp_path, capsys, monkeypatch, host, message):
    code, out, err = cli(capsys, monkeypatch, "editor-config", "--profile", "budget-4070", host)
    assert_bad(code, out, err, message)
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", host, "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, message)


@pytest.mark.parametrize(("host", "ssh"), [("[::1]:22", "-p 22 -o StrictHostKeyChecking=yes ::1"),
                                           ("deploy@[fd00::5]:2222", "-p 2222 -o StrictHostKeyChecking=yes deploy@fd00::5"),
                                           ("[fd00::5]", "-o StrictHostKeyChecking=yes fd00::5")])
def test_editor_config_takes_a_bracketed_ipv6_host(capsys, monkeypatch, host, ssh):
    code, doc, said = _editor_config(capsys, monkeypatch, "budget-4070", host)
    assert code == 0, said
    assert doc["tunnel"] == f"ssh -N -L 11434:127.0.0.1:11434 {ssh}"


@pytest.mark.parametrize(("bind", "host", "api"), [("[fd00::5]:11434", "ws1", "http://[fd00::5]:11434"),
                                                   ("[::]:11434", "[fd00::7]", "http://[fd00::7]:11434"),
                                                   ("0.0.0.0:11434", "[fd00::7]:22", "http://[fd00::7]:11434"),
                                                   ("10.0.0.5:11434", "ws1", "http://10.0.0.5:11434")])
def test_an_exposed_ipv6_ollama_gets_a_url_with_brackets(tmp_path, capsys, monkeypatch, bind, host, api):
    path = profile(tmp_path, BASE + f"ollama: {{host: '{bind}', expose: true}}\n")
    code, doc, said = _editor_config(capsys, monkeypatch, str(path), host)
    assert code == 0, said
    assert doc["api_base"] == api and doc["tunnel"] is None
    assert json.loads(doc["files"][0]["content"]) == {"github.copilot.chat.byok.ollamaEndpoint": api}


def test_the_tunnel_ends_where_an_ipv6_loopback_ollama_listens(tmp_path, capsys, monkeypatch):
    path = profile(tmp_path, BASE + "ollama: {host: '[::1]:11500'}\n")
    code, doc, said = _editor_config(capsys, monkeypatch, str(path), "ws1")
    assert code == 0, said
    assert doc["tunnel"].startswith("ssh -N -L 11434:[::1]:11500 ") and doc["api_base"] == "http://127.0.0.1:11434"


def test_apply_writes_editor_files_for_an_ipv6_host(tmp_path):
    # The run's editor files are written after the playbook: an IPv6 host must not fail there.
    targets = [from_argument("deploy@[fd00::5]:2222"), from_argument("[fd00::6]")]
    request = ApplyRequest(profile=load_profile("budget-4070"), hosts=targets, runs_dir=tmp_path)
    write_editor_config(tmp_path, request)
    readme = (tmp_path / "editor/fd00::5/README.md").read_text()
    assert "-p 2222 -o StrictHostKeyChecking=yes deploy@fd00::5`" in readme
    assert [from_argument(as_argument(t)) for t in targets] == targets


# --- a model registry is no IPv6 address ------------------------------------------------------

REGISTRY_IPV6 = "Ollama's model names cannot hold an IPv6 address (bracketed or not)"


@pytest.mark.parametrize("registry", ["::1:5000", "fd00::5:5000", "[::1]:5000", "[fd00::5]:5000"])
def test_an_ipv6_model_registry_is_refused(tmp_path, capsys, monkeypatch, registry):
    # Ollama pulls <registry>/<namespace>/<model>:<tag>; its name parser takes no `[` and no
    # IPv6 colons in the host part, so no model name could be built on such a registry.
    path = profile(tmp_path, BASE + f"model_registry: '{registry}'\n")
    code, out, err = cli(capsys, monkeypatch, "profiles", "validate", str(path))
    assert_bad(code, out, err, f"mine.yaml:3: model_registry: '{registry}': {REGISTRY_IPV6}")
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "ws1", "--model-registry",
                         registry, "--model-digest", "sha256:" + "a" * 64, "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, f"--model-registry: '{registry}': {REGISTRY_IPV6}")


@pytest.mark.parametrize("registry", ["mirror.lan:5000", "10.0.0.5:5000", "localhost:5000"])
def test_a_model_registry_by_name_or_ipv4_is_rendered(tmp_path, capsys, monkeypatch, registry):
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "ws1", "--model-registry",
                         registry, "--model-digest", "sha256:" + "a" * 64, "-o", str(tmp_path / "o"))
    assert code == 0, out + err
    assert f'models_registry: "{registry}"' in (tmp_path / "o/group_vars/all.yml").read_text().splitlines()


# --- a host given twice -----------------------------------------------------------------------

@pytest.mark.parametrize(("hosts", "message"), [
    (["ws1", "ws1"], "host ws1 given more than once: give each host once"),
    (["ws1", "root@ws1"], "host ws1 given more than once: give each host once"),
    (["ws1:22", "ws1"], "host ws1 given more than once: give each host once"),
    (["ws2", "ws1", "WS1"], "host WS1 given more than once (as ws1 and WS1)"),
    (["localhost", "127.0.0.1"], "host localhost given more than once"),
    (["[fd00::5]", "deploy@[fd00::5]:2222"], "host fd00::5 given more than once"),
])
@pytest.mark.parametrize("command", ["render", "apply"])
def test_a_host_given_twice_is_a_user_error(tmp_path, capsys, monkeypatch, hosts, message, command):
    out_opts = ["-o", str(tmp_path / "o")] if command == "render" else ["--runs-dir", str(tmp_path / "runs")]
    # A safety net, not part of the check: without the refusal, apply stops for want of
    # ansible-playbook (neither on PATH nor next to "this Python") instead of running.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    code, out, err = cli(capsys, monkeypatch, command, "--profile", "budget-4070", *hosts, *out_opts)
    assert_bad(code, out, err, message)
    assert len((out + err).strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "runs").exists()


def test_a_host_in_the_inventory_and_on_the_command_line_is_given_twice(tmp_path, capsys, monkeypatch):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.1\nws2 ansible_host=10.0.0.2\n")
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "-i", str(inventory), "ws2",
                         "-o", str(tmp_path / "o"))
    assert_bad(code, out, err, "host ws2 given more than once")


def test_different_hosts_on_one_address_are_two_hosts(tmp_path, capsys, monkeypatch):
    # Two names are two inventory hosts even when they share an address (a NAT forwards ports).
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("ws1 ansible_host=10.0.0.1 ansible_port=2201\nws2 ansible_host=10.0.0.1 ansible_port=2202\n")
    code, out, err = cli(capsys, monkeypatch, "render", "--profile", "budget-4070", "-i", str(inventory),
                         "-o", str(tmp_path / "o"))
    assert code == 0, out + err
