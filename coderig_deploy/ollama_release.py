"""Is the Ollama pin a published release? Asked on the controller before a run, when it is online.

The release publishes `sha256sum.txt` beside its archives. When the controller can
fetch it (within a couple of seconds), a run is refused (exit 2, naming the file)
if the archive the hosts would download is not listed there, if the sha256 pin
disagrees with the listed digest, or if the release has no list at all (HTTP 404:
a version that was never released, issue 13's 0.33.0). When the controller cannot
reach it (no route, no name resolution, no answer in time, a server error) the
check is skipped and the run's output and report say so: offline controllers are
a supported case, never a failure.

The hosts verify the archive themselves in any case (the ollama role's get_url
checksum); this check moves a bad pin's failure from every host to the controller,
before anything changes.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from coderig_deploy.bundle.ollama import RELEASES, parse_checksums
from coderig_deploy.errors import UserInputError
from coderig_deploy.project import ProjectSpec
from coderig_deploy.reports.model import CheckResult

CHECKSUMS = "sha256sum.txt"
# The archives the ollama role may download (ollama_arch: amd64 or arm64, by host).
DEFAULT_ARCHIVES = ("ollama-linux-amd64.tar.zst", "ollama-linux-arm64.tar.zst")
TIMEOUT_S = 2.0  # no answer within this: the controller counts as offline
LIST_LIMIT = 1 << 20


class ReleaseMismatch(UserInputError):
    """The release's published checksum list contradicts the pin, or lacks the archive."""


class Unreachable(Exception):
    """The checksum list could not be fetched: offline, or the server failed."""


@dataclass(frozen=True)
class ReleaseCheck:
    status: Literal["verified", "skipped"]
    detail: str  # one line for the run's output and the report

    def check_result(self) -> CheckResult:
        return CheckResult(name="ollama_release", status="pass" if self.status == "verified" else "skip",
                           reason=self.detail, source="apply")

    def line(self) -> str:
        return f"Ollama release check {self.status}: {self.detail}"


Fetch = Callable[[str, float], bytes]  # url, timeout -> body; raises Unreachable or urllib HTTPError


def check_release(version: str, archive_url: str | None, checksum: str | None,
                  fetch: Fetch | None = None, timeout: float = TIMEOUT_S) -> ReleaseCheck:
    """Check the pinned release against its published list; raises ReleaseMismatch (exit 2)."""
    publisher = archive_url is None
    base = f"{RELEASES}/v{version}" if publisher else archive_url.rsplit("/", 1)[0]
    names = DEFAULT_ARCHIVES if publisher else (archive_url.rsplit("/", 1)[1],)
    list_url = _list_url(base, checksum)
    pin = checksum.removeprefix("sha256:") if checksum and "://" not in checksum else None
    try:
        text = (fetch or fetch_with_deadline)(list_url, timeout).decode(errors="replace")
    except Unreachable as exc:
        return ReleaseCheck("skipped", f"{list_url} not reachable from this controller ({exc}); "
                                       "the hosts still verify the archive")
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410) and (publisher or pin is None):
            raise ReleaseMismatch(f"{list_url}: HTTP {exc.code}: Ollama {version} publishes no checksum list "
                                  "(not a released version?); pin a released version") from None
        return ReleaseCheck("skipped", f"{list_url}: HTTP {exc.code}; the hosts still verify the archive")
    listed = {name: parse_checksums(text, name) for name in names}
    missing = [name for name, digest in listed.items() if digest is None]
    if missing:
        raise ReleaseMismatch(f"{list_url} does not list {', '.join(missing)}: "
                              f"not an archive of Ollama {version}'s release")
    if pin is not None and pin not in listed.values():
        shown = ", ".join(f"{name} {digest}" for name, digest in listed.items())
        raise ReleaseMismatch(f"the pin sha256:{pin} disagrees with {list_url} ({shown}); "
                              "take the pin from the release's sha256sum.txt")
    what = "the pin matches" if pin is not None else "archives listed"
    return ReleaseCheck("verified", f"Ollama {version}: {what} in {list_url}")


def _list_url(base: str, checksum: str | None) -> str:
    """The list the hosts would read (a `sha256:<url>` checksum), else the one beside the archive."""
    if checksum and "://" in checksum:
        return checksum.removeprefix("sha256:")
    return f"{base}/{CHECKSUMS}"


def fetch_with_deadline(url: str, timeout: float) -> bytes:
    """GET `url`, giving up after about `timeout` seconds in all (name resolution included)."""
    box: dict[str, object] = {}

    def get() -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                box["body"] = response.read(LIST_LIMIT)
        except urllib.error.HTTPError as exc:
            box["error"] = exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            box["error"] = Unreachable(str(getattr(exc, "reason", exc)))

    worker = threading.Thread(target=get, daemon=True)  # left behind if name resolution hangs
    worker.start()
    worker.join(timeout + 0.5)
    if worker.is_alive():
        raise Unreachable(f"no answer within {timeout:.0f} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["body"]  # type: ignore[return-value]


def check_spec(spec: ProjectSpec) -> ReleaseCheck | None:
    """The check for a rendered project; None with --bundle (its archive was checked when it was built)."""
    if spec.bundle is not None:
        return None
    return check_release(spec.ollama_version, spec.ollama_archive_url, spec.ollama_archive_checksum)
