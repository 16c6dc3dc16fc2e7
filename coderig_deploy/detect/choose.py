"""Which profiles fit a host, best first, and the one `--profile auto` picks (pure).

A profile fits a host when the host has at least `hardware.count` usable cards of the
profile's GPU model (the model preflight checks: same catalog GPU), each with at least
`min_vram_mib`, and the profile's plan fits its cards. RAM and free disk below the
profile's minimum exclude it where the run refuses such hosts (real hosts) and only
add a warning where it warns (sandbox hosts share the controller's RAM and disk).

Order (the rule `auto` applies, first difference wins):
  1. more of the host's cards used (a dual-4090 tower gets the dual-4090 profile);
  2. more planned VRAM (the larger model and context the cards hold);
  3. higher expected tok/s;
  4. the profile name (deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from coderig_deploy.catalog import PRE_TURING_REASON
from coderig_deploy.detect.facts import HostFacts
from coderig_deploy.profiles import Profile

RULE = "most GPUs used, then most planned VRAM, then highest expected tok/s"


@dataclass(frozen=True)
class Candidate:
    profile: str
    gpus_used: int
    vram_mib: int
    expected_tok_s: float
    plan_tok_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int, float, str]:
        return (-self.gpus_used, -self.vram_mib, -self.expected_tok_s, self.profile)


@dataclass(frozen=True)
class Choice:
    host: str
    profile: str | None
    reason: str
    candidates: list[Candidate] = field(default_factory=list)


def _short(profile: Profile, facts: HostFacts) -> list[str]:
    """RAM and disk the host lacks for the profile."""
    hw, short = profile.hardware, []
    if facts.ram_mib is not None and facts.ram_mib < hw.min_ram_gib * 1024 * 0.95:  # MemTotal omits reserved RAM
        short.append(f"RAM {facts.ram_mib / 1024:.0f} GiB < {hw.min_ram_gib} GiB")
    if facts.disk_free_gib is not None and facts.disk_free_gib < hw.min_disk_gib:
        short.append(f"free disk {facts.disk_free_gib:.0f} GiB < {hw.min_disk_gib} GiB")
    return short


def candidate(profile: Profile, facts: HostFacts, policy: Literal["refuse", "warn"] = "refuse",
              ) -> Candidate | None:
    """The profile as a candidate for the host, or None when it does not fit."""
    hw = profile.hardware
    cards = [g for g in facts.gpus if g.usable and g.slug == hw.gpu
             and (g.vram_mib is None or g.vram_mib >= hw.min_vram_mib)]
    plan = profile.plan
    if len(cards) < hw.count or not plan.fits:
        return None
    short = _short(profile, facts)
    if short and policy == "refuse":
        return None
    return Candidate(profile=profile.name, gpus_used=hw.count, vram_mib=plan.vram_mib,
                     expected_tok_s=profile.expect.decode_tok_s, plan_tok_s=round(plan.decode_tok_s, 1),
                     warnings=short)


def candidates(facts: HostFacts, profiles: list[Profile],
               policy: Literal["refuse", "warn"] = "refuse") -> list[Candidate]:
    """Every profile that fits the host, best first."""
    found = [c for p in profiles if (c := candidate(p, facts, policy)) is not None]
    return sorted(found, key=lambda c: c.key)


def describe_gpus(facts: HostFacts) -> str:
    """`2x rtx-4090` style summary of the usable cards, plus what is not usable."""
    usable = ", ".join(f"{n}x {slug}" for slug, n in sorted(facts.usable_by_slug().items())) or "no usable GPU"
    notes = []
    dead = facts.not_seen_by_driver
    if dead:
        notes.append(f"{len(dead)} more on the PCI bus not seen by the driver "
                     f"({', '.join(f'{g.bus_id} {g.slug or g.name}' for g in dead)})")
    old = facts.pre_turing_pci_ids
    if old:
        notes.append(f"pre-Turing card{'s' if len(old) > 1 else ''} {', '.join(old)} (Pascal, Volta or older): not "
                     f"in the catalog, as {PRE_TURING_REASON}")
    if facts.unknown_pci_ids:
        notes.append(f"unknown PCI id {', '.join(facts.unknown_pci_ids)} (not in data/gpus.tsv)")
    return usable + (f"; {'; '.join(notes)}" if notes else "")


def _write_one(facts: HostFacts) -> str:
    """The command that writes a profile for the host's cards: a profile names one GPU model, so only for a host
    whose usable cards are all of one known model (none: nothing to suggest)."""
    by_slug = facts.usable_by_slug()
    if len(by_slug) != 1:
        return ""
    cards = [slug for slug, n in by_slug.items() for _ in range(n)]
    return f" (`coderig-deploy recommend {' '.join(f'--gpu {s}' for s in cards)} --write-profile FILE` writes one)"


def choose(facts: HostFacts, profiles: list[Profile], policy: Literal["refuse", "warn"] = "refuse") -> Choice:
    """The best profile for the host (or None) and the reason, in one line."""
    if not facts.reachable:
        return Choice(facts.host, None, f"not detected: {facts.error}")
    ranked = candidates(facts, profiles, policy)
    found = describe_gpus(facts)
    if not ranked:
        return Choice(facts.host, None, f"no profile fits this host: {found}{_write_one(facts)}", ranked)
    best = ranked[0]
    reason = (f"auto: {found}; {best.profile} uses {best.gpus_used} GPU(s), plans {best.vram_mib} MiB, "
              f"expects {best.expected_tok_s:g} tok/s; best of {len(ranked)} fitting ({RULE})")
    if best.warnings:
        reason += f"; warning: {', '.join(best.warnings)}"
    return Choice(facts.host, best.profile, reason, ranked)
