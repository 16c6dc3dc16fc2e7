"""Find the Debian mirror this machine already uses (never a hard-coded host name)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from coderig_deploy.errors import EnvironmentProblem

DEB822_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
ONE_LINE_SOURCES = Path("/etc/apt/sources.list")


class Mirror(BaseModel):
    """A Debian archive URI and the suite to bootstrap from it."""

    uri: str
    suite: str


def parse_deb822(text: str) -> Mirror | None:
    """Return the first non-security `Types: deb` stanza's mirror from deb822 text."""
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        uris, suites = fields.get("uris", "").split(), fields.get("suites", "").split()
        if fields.get("enabled", "yes").lower() == "no" or not uris or not suites:
            continue
        if "security" in suites[0] or "security" in uris[0]:
            continue
        return Mirror(uri=uris[0].rstrip("/"), suite=suites[0])
    return None


def parse_sources_list(text: str) -> Mirror | None:
    """Return the first non-security `deb URI SUITE ...` line's mirror."""
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        words = [w for w in words[1:] if not w.startswith("[")]
        # options like "[signed-by=...]" may span words; drop any with "=" before the URI
        words = [w for w in words if "://" in w or "=" not in w]
        if len(words) >= 2 and "security" not in words[1] and "security" not in words[0]:
            return Mirror(uri=words[0].rstrip("/"), suite=words[1])
    return None


def configured_mirror(
    deb822: Path = DEB822_SOURCES, one_line: Path = ONE_LINE_SOURCES
) -> Mirror:
    """Read the machine's apt configuration and return the Debian mirror it uses."""
    if deb822.is_file():
        found = parse_deb822(deb822.read_text())
        if found:
            return found
    if one_line.is_file():
        found = parse_sources_list(one_line.read_text())
        if found:
            return found
    raise EnvironmentProblem(
        f"no Debian mirror found in {deb822} or {one_line}: configure apt "
        "(a `URIs:` line or a `deb URI SUITE main` line) so the sandbox can debootstrap"
    )
