"""Give every host of a run its profile: from the command line, the inventory's
`coderig_profile` (per host or group), or `auto` (detect the host, then choose.py's rule).

Precedence: the inventory's `coderig_profile` for a host, else `--profile`. Either may be
`auto`. A host no profile fits, or that cannot be read for `auto`, gets no profile: it is
reported with the reason and left untouched (it is not in the rendered inventory).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from coderig_deploy.detect import choose
from coderig_deploy.detect.facts import HostFacts, host_facts, unreachable
from coderig_deploy.detect.probe import ProbeTarget, read_host
from coderig_deploy.errors import CoderigError, UserInputError
from coderig_deploy.profiles import Profile, list_profiles, load_profile
from coderig_deploy.project import TargetHost

AUTO = "auto"
Source = Literal["--profile", "inventory", "auto"]


@dataclass(frozen=True)
class HostProfile:
    host: str
    profile: str | None  # None: no profile fits; the host is left untouched
    reason: str
    source: Source


def probe_target(host: TargetHost) -> ProbeTarget:
    return ProbeTarget(name=host.name, address=host.address or host.name, user=host.user or "root",
                       port=host.port or 22, key_file=Path(host.key_file) if host.key_file else None,
                       known_hosts=Path(host.known_hosts) if host.known_hosts else None,
                       local=host.connection == "local", become=host.become)


def detect_one(target: ProbeTarget) -> HostFacts:
    """A host's facts; an unreachable host gives facts that say why, never an exception."""
    try:
        return host_facts(target.name, read_host(target))
    except CoderigError as exc:  # the host's name is already the row's: no "ws1: " prefix twice
        return unreachable(target.name, str(exc).removeprefix(f"{target.name}: "))
    except (OSError, EOFError, TimeoutError) as exc:
        return unreachable(target.name, f"cannot read {target.address}: {exc}")


def detect_all(targets: list[ProbeTarget], parallel: int = 8) -> list[HostFacts]:
    """Every host's facts, read in parallel, in the order given."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(parallel, len(targets))) as pool:
        return list(pool.map(detect_one, targets))


def all_profiles(profiles_dir: Path | None = None) -> list[Profile]:
    """Every profile auto chooses from: the shipped ones and those of --profiles-dir."""
    return [load_profile(name, profiles_dir) for name in list_profiles(profiles_dir)]


def assign(hosts: list[TargetHost], default: str | None, inventory: dict[str, str],
           profiles_dir: Path | None = None, policy: Literal["refuse", "warn"] = "refuse",
           detect: Callable[[list[ProbeTarget]], list[HostFacts]] = detect_all) -> list[HostProfile]:
    """Each host's profile and why, in the order of `hosts`."""
    wanted: dict[str, tuple[str, Source]] = {}
    for host in hosts:
        if host.name in inventory:
            wanted[host.name] = (inventory[host.name], "inventory")
        elif default is not None:
            wanted[host.name] = (default, "--profile")
        else:
            raise UserInputError(f"host {host.name!r} has no profile: give --profile NAME (or auto), "
                                 f"or set coderig_profile for it in the inventory")
    auto_hosts = [h for h in hosts if wanted[h.name][0] == AUTO]
    choices: dict[str, choose.Choice] = {}
    if auto_hosts:
        candidates = all_profiles(profiles_dir)
        for facts in detect([probe_target(h) for h in auto_hosts]):
            choices[facts.host] = choose.choose(facts, candidates, policy)
    result = []
    for host in hosts:
        name, source = wanted[host.name]
        if name == AUTO:
            picked = choices[host.name]
            result.append(HostProfile(host.name, picked.profile, picked.reason, "auto"))
        else:
            load_profile(name, profiles_dir)  # an unknown name is bad input (exit 2), before anything runs
            where = "the inventory's coderig_profile" if source == "inventory" else "--profile"
            result.append(HostProfile(host.name, name, f"{name} from {where}", source))
    return result
