"""Every host:port a user gives is read one way: ports 1-65535, IPv6 addresses in brackets.

Profile fields (ollama.host, model_registry), --model-registry, and the HOST arguments of
render, apply and editor-config; each case runs the real command line through `main()`.
"""

from __future__ import annotations

import pytest

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
