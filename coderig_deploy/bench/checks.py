"""The outcome of one check, shared by the verdict, the reports and `verify`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from collections.abc import Iterable
from typing import Any

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
_RANK = {PASS: 0, SKIP: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Check:
    """One named check of one host: status is pass, warn, fail or skip (not measured)."""

    name: str
    status: str
    reason: str
    measured: Any = None
    expected: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overall(checks: list[Check]) -> str:
    """fail if any check failed, warn if any warned, else pass."""
    return worst(c.status for c in checks)


def worst(statuses: Iterable[str]) -> str:
    """The worst of check statuses or verdicts: fail, then warn, else pass (skip counts as pass)."""
    rank = max((_RANK[s] for s in statuses), default=0)
    return {0: PASS, 1: WARN, 2: FAIL}[rank]
