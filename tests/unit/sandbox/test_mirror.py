"""Finding the machine's Debian mirror in apt's configuration (both formats)."""

from pathlib import Path

import pytest

from coderig_deploy.errors import EnvironmentProblem
from coderig_deploy.sandbox.mirror import (
    Mirror,
    configured_mirror,
    parse_deb822,
    parse_sources_list,
)

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_deb822_skips_security_and_source_stanzas() -> None:
    assert parse_deb822(DEB822) == Mirror(uri="http://mirror.example/debian", suite="bookworm")


def test_deb822_skips_disabled_stanzas() -> None:
    text = "Types: deb\nURIs: http://off.example/debian\nSuites: trixie\nEnabled: no\n\n" + DEB822
    assert parse_deb822(text).uri == "http://mirror.example/debian"  # type: ignore[union-attr]


def test_sources_list_with_options_and_comments() -> None:
    text = ("# deb http://old.example/debian buster main\n"
            "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian bookworm main\n"
            "deb http://m.example/debian-security bookworm-security main\n")
    assert parse_sources_list(text) == Mirror(uri="http://m.example/debian", suite="bookworm")


def test_no_mirror_is_an_environment_problem(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("# nothing here\n")
    with pytest.raises(EnvironmentProblem, match="no Debian mirror"):
        configured_mirror(tmp_path / "debian.sources", tmp_path / "sources.list")


def test_deb822_file_wins_over_sources_list(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text("deb http://other.example/debian bookworm main\n")
    found = configured_mirror(tmp_path / "debian.sources", tmp_path / "sources.list")
    assert found.uri == "http://mirror.example/debian"
