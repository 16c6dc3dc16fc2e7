"""The ollama role as Ollama's install.sh would set it up (issue 13, finding 4): a released
version pin, architecture-correct URLs, and the unit's PATH line."""

from __future__ import annotations

import jinja2
import yaml

from coderig_deploy.profiles import list_profiles, load_profile
from coderig_deploy.resources import shipped_dir
from coderig_deploy.sandbox.ollama_sim import VERSION

ROLES = shipped_dir("playbooks") / "roles"


def _defaults(role: str) -> dict[str, object]:
    return dict(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()))


def _render(expression: str, **facts: object) -> str:
    return jinja2.Template(str(expression)).render(**facts)


def test_the_pin_is_the_released_033_3_everywhere() -> None:
    assert _defaults("ollama")["ollama_version"] == "0.33.3" == VERSION
    assert {load_profile(name).ollama.version for name in list_profiles()} == {"0.33.3"}


def test_archive_and_keyring_urls_follow_the_cpu() -> None:
    ollama, driver = _defaults("ollama"), _defaults("nvidia_driver")
    for arch, archive, keyring in (("x86_64", "amd64", "x86_64"), ("aarch64", "arm64", "sbsa")):
        facts = {"ansible_facts": {"architecture": arch}}
        assert _render(str(ollama["ollama_arch"]), **facts) == archive
        assert _render(str(driver["nvidia_driver_cuda_arch"]), **facts) == keyring


def test_the_unit_has_install_sh_s_path_line() -> None:
    defaults = _defaults("ollama")
    path = _render(str(defaults["ollama_service_path"]), ollama_prefix="/usr/local")
    unit = jinja2.Template((ROLES / "ollama" / "templates" / "ollama.service.j2").read_text()).render(
        ollama_prefix="/usr/local", ollama_user="ollama", ollama_group="ollama",
        ollama_dropin_dir="/etc/systemd/system/ollama.service.d", ollama_service_path=path)
    assert 'Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n' in unit
    assert "ExecStart=/usr/local/bin/ollama serve\n" in unit and "WantedBy=default.target" in unit
