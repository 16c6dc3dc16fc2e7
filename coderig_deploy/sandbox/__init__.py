"""The sandbox: booted local Debian hosts with simulated GPUs (see docs/simulation-seam.md).

`Lab` is the entry point; the CLI (`coderig-deploy sandbox`) and the integration
tests both drive it. Only root can boot hosts.
"""

from coderig_deploy.sandbox.lab import HostSpec, Lab

__all__ = ["HostSpec", "Lab"]
