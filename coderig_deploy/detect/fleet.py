"""A run's hosts grouped by profile, ready for apply: `--profile auto` and the
inventory's `coderig_profile` resolved (assign.py), each group with its own render
options (in the sandbox, the lab's pins differ per model and Ollama version)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coderig_deploy.apply import ProfileGroup
from coderig_deploy.detect.assign import AUTO, HostProfile, assign
from coderig_deploy.errors import RunFailed, UserInputError
from coderig_deploy.profiles import Profile, list_profiles, load_profile
from coderig_deploy.project import TargetHost
from coderig_deploy.targets import TargetOptions, inventory_profiles, only_targets, resolve_targets


@dataclass(frozen=True)
class Fleet:
    groups: list[ProfileGroup]
    unmatched: dict[str, str] = field(default_factory=dict)  # host -> why no profile; left untouched
    choices: list[HostProfile] = field(default_factory=list)

    @property
    def first(self) -> ProfileGroup:
        return self.groups[0]

    @property
    def hosts(self) -> list[TargetHost]:
        return [h for g in self.groups for h in g.hosts]


def is_fleet(profile: str | None, inventory: Path | None) -> bool:
    """True when hosts may get different profiles: auto, or an inventory that names them."""
    return profile == AUTO or profile is None or bool(inventory and inventory_profiles(inventory))


def _base(profile: str | None, per_host: dict[str, str], profiles_dir: Path | None) -> Profile:
    """Any named profile, to resolve the hosts with (the hosts do not depend on it)."""
    named = [p for p in (profile, *per_host.values()) if p and p != AUTO]
    return load_profile(named[0] if named else list_profiles(profiles_dir)[0], profiles_dir)


def plan_fleet(profile: str | None, opts: TargetOptions, profiles_dir: Path | None = None,
               only: list[str] | None = None) -> Fleet:
    """Every host's profile and the groups apply renders (only the hosts named in `only`,
    when given: a retry); raises RunFailed when no host got one (nothing to run),
    UserInputError for bad names or options."""
    per_host = inventory_profiles(opts.inventory) if opts.inventory else {}
    targets, base_options = resolve_targets(_base(profile, per_host, profiles_dir), opts)
    if only is not None:
        targets = only_targets(targets, only)
    choices = assign(targets, profile, per_host, profiles_dir, base_options.resource_policy)
    by_host = {t.name: t for t in targets}
    names = list(dict.fromkeys(c.profile for c in choices if c.profile is not None))
    if len(names) > 1 and opts.model_digest:
        raise UserInputError("--model-digest pins one model: hosts of this run have several profiles "
                             f"({', '.join(names)}); set model.manifest_digest in each profile instead")
    groups = []
    for name in names:
        loaded = load_profile(name, profiles_dir)
        _, options = resolve_targets(loaded, opts)
        mine = [c for c in choices if c.profile == name]
        groups.append(ProfileGroup(profile=loaded, hosts=[by_host[c.host] for c in mine], options=options,
                                   reasons={c.host: c.reason for c in mine}))
    unmatched = {c.host: c.reason for c in choices if c.profile is None}
    if not groups:
        raise RunFailed("no host got a profile, nothing was run: "
                        + "; ".join(f"{h}: {why}" for h, why in unmatched.items()))
    return Fleet(groups=groups, unmatched=unmatched, choices=choices)
