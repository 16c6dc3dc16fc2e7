"""How many hosts Ansible provisions in parallel when the user does not say (`--forks`).

A fork is one ansible-playbook worker process: it renders a task's module, sends it
over SSH and waits for the host, so it spends most of its time waiting, not on the
controller's CPU. Ansible's own default (5) serialises a 20-desk fleet into four
waves; one fork per host, bounded by what the controller's CPUs can feed, does not.
The bound (10 workers per CPU, never under Ansible's 5) keeps a small controller from
starting hundreds of Python workers for a large inventory; benchmarks/fleet_scale.py
measures the fleet on a 2-CPU controller with it.
"""

from __future__ import annotations

import os

FORKS_PER_CPU = 10
ANSIBLE_DEFAULT_FORKS = 5
MAX_FORKS = 200  # the limit --forks accepts


def controller_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which containers narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_bound(cpus: int) -> int:
    """The most forks `cpus` controller CPUs get by default."""
    return min(MAX_FORKS, max(ANSIBLE_DEFAULT_FORKS, FORKS_PER_CPU * cpus))


def auto_forks(hosts: int, cpus: int | None = None) -> int:
    """min(hosts, the CPU bound): one fork per host on a fleet the controller can feed."""
    return max(1, min(hosts, cpu_bound(cpus if cpus is not None else controller_cpus())))
