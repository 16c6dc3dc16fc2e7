"""Which NVIDIA driver branches each OS can install, under which package names (data/driver_branches.tsv).

Pure: the table is read on the controller and what one profile needs is rendered
into the project (`offers`), so the roles never re-derive package names. A branch an
OS does not offer, or offers only as a transitional package that pulls in another
branch, is refused by preflight before anything changes on the host.
"""

from __future__ import annotations

import csv
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict

from coderig_deploy.resources import DATA_DIR

DriverSource = Literal["distro", "cuda-repo", "local-repo"]
SUPPORTED_OS = ("Debian 12", "Ubuntu 22.04", "Ubuntu 24.04")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BranchRow(_Row):
    os: str
    channel: Literal["nvidia", "distro"]
    branch: int
    status: str
    packages_open: str
    packages_proprietary: str
    pinning_package: str
    signed_open: str
    signed_proprietary: str
    source: str


class ArchRow(_Row):
    architecture: str
    min_branch: int
    default_branch: int
    source: str


class Offer(_Row):
    """What one OS offers for the profile's branch, source and module flavour (rendered per OS)."""

    offered: bool
    reason: str
    packages: list[str]
    pinning_package: str
    signed_modules: list[str]
    branches: list[str]


def _read(name: str) -> list[dict[str, str]]:
    lines = [ln for ln in (DATA_DIR / name).read_text().splitlines() if ln and not ln.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


@cache
def branch_rows() -> tuple[BranchRow, ...]:
    return tuple(BranchRow.model_validate(r) for r in _read("driver_branches.tsv"))


@cache
def arch_rows() -> dict[str, ArchRow]:
    return {r["architecture"]: ArchRow.model_validate(r) for r in _read("driver_arch.tsv")}


def channel(source: DriverSource) -> Literal["nvidia", "distro"]:
    """local-repo is a mirror of NVIDIA's repository: the same package names."""
    return "distro" if source == "distro" else "nvidia"


def _names(field: str) -> list[str]:
    return [] if field == "-" else [n.strip() for n in field.split(",") if n.strip()]


def offer(os_id: str, branch: int, source: DriverSource, open_modules: bool) -> Offer:
    """What `os_id` ("Debian 12") offers for `branch` from `source`."""
    rows = [r for r in branch_rows() if r.os == os_id and r.channel == channel(source)]
    usable = [str(r.branch) for r in rows if r.status == "offered"]
    row = next((r for r in rows if r.branch == branch), None)
    if row is None or row.status != "offered":
        why = ("is not offered" if row is None else
               f"is only a transitional package that installs branch {row.status.split(':', 1)[1]}"
               if row.status.startswith("transitional:") else "is too old for Ollama (550+)")
        return Offer(offered=False, packages=[], pinning_package="", signed_modules=[], branches=usable,
                     reason=f"driver branch {branch} {why} on {os_id} from source {source} "
                            f"(offered: {', '.join(usable) or 'none'})")
    return Offer(
        offered=True, reason="",
        packages=_names(row.packages_open if open_modules else row.packages_proprietary),
        pinning_package="" if row.pinning_package == "-" else row.pinning_package,
        signed_modules=_names(row.signed_open if open_modules else row.signed_proprietary),
        branches=usable,
    )


def offers(branch: int, source: DriverSource, open_modules: bool) -> dict[str, Offer]:
    """The offer of every supported OS: rendered into the project for preflight and the driver role."""
    return {os_id: offer(os_id, branch, source, open_modules) for os_id in SUPPORTED_OS}


def default_branch(architecture: str) -> int:
    row = arch_rows().get(architecture)
    return row.default_branch if row else max(r.default_branch for r in arch_rows().values())


def branch_problem(branch: int, architecture: str, source: DriverSource) -> str | None:
    """Why `branch` cannot work for this GPU architecture from `source` on any supported OS (None: it can)."""
    row = arch_rows().get(architecture)
    if row and branch < row.min_branch:
        return (f"driver branch {branch} does not support {architecture} GPUs: {row.min_branch} or newer "
                f"(default {row.default_branch}; {row.source})")
    if not any(offer(os_id, branch, source, True).offered for os_id in SUPPORTED_OS):
        usable = sorted({r.branch for r in branch_rows() if r.channel == channel(source) and r.status == "offered"})
        return (f"driver branch {branch} is offered by no supported OS from source {source} "
                f"(offered: {', '.join(map(str, usable))})")
    return None
