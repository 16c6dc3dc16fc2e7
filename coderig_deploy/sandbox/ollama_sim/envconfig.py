"""The server's environment, read the way Ollama's envconfig reads it (ollama.md,
Server environment). Also the simulator's own paths (the simulation seam)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .names import parse_duration

DEFAULT_PORT = 11434
DEFAULT_KEEP_ALIVE = 300.0  # 5m

# The simulation seam (docs/simulation-seam.md); overridable for local tests.
GPUS_FILE = "/etc/coderig-sim/gpus.json"
USAGE_FILE = "/run/coderig-sim/usage.json"
FAULTS_FILE = "/etc/coderig-sim/ollama-faults.json"
# The cards are only usable when the (simulated) kernel driver is loaded, as for real Ollama.
DRIVER_FILE = "/proc/driver/nvidia/version"


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    models: Path
    keep_alive: float
    max_loaded_models: int
    num_parallel: int
    context_length: int
    kv_cache_type: str
    flash_attention: bool | None
    noprune: bool
    gpus_file: Path
    usage_file: Path
    faults_file: Path
    driver_file: Path
    time_scale: float

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def parse_host(value: str | None) -> tuple[str, int]:
    """OLLAMA_HOST as envconfig.Host reads it: ``[scheme://]host[:port][/path]``.

    Without a scheme the port defaults to 11434; ``http://`` defaults to 80 and
    ``https://`` to 443. An empty host (``:11434``) binds every interface.
    """
    text = (value or "").strip().strip("\"'")
    default_port = DEFAULT_PORT
    scheme, sep, hostport = text.partition("://")
    if not sep:
        hostport = text
    elif scheme == "http":
        default_port = 80
    elif scheme == "https":
        default_port = 443
    hostport = hostport.split("/", 1)[0]
    match = re.match(r"^\[?([^\]]*?)\]?:(\d+)$", hostport)
    if match:
        return match.group(1), int(match.group(2))
    return (hostport.strip("[]") or "127.0.0.1"), default_port


def _bool(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in ("1", "true", "yes", "on", "t")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"invalid {name}={raw!r}: want an integer") from exc


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    host, port = parse_host(env.get("OLLAMA_HOST"))
    home = env.get("HOME", "/root")
    models = env.get("OLLAMA_MODELS") or os.path.join(home, ".ollama", "models")
    kv = (env.get("OLLAMA_KV_CACHE_TYPE") or "f16").strip().lower()
    return Config(
        host=host,
        port=port,
        models=Path(models),
        keep_alive=parse_duration(env.get("OLLAMA_KEEP_ALIVE"), DEFAULT_KEEP_ALIVE),
        max_loaded_models=_int(env, "OLLAMA_MAX_LOADED_MODELS", 0),
        num_parallel=max(1, _int(env, "OLLAMA_NUM_PARALLEL", 1)),
        context_length=_int(env, "OLLAMA_CONTEXT_LENGTH", 0),
        kv_cache_type=kv if kv in ("f16", "q8_0", "q4_0") else "f16",
        flash_attention=_bool(env.get("OLLAMA_FLASH_ATTENTION")),
        noprune=bool(_bool(env.get("OLLAMA_NOPRUNE"))),
        gpus_file=Path(env.get("CODERIG_SIM_GPUS") or GPUS_FILE),
        usage_file=Path(env.get("CODERIG_SIM_USAGE") or USAGE_FILE),
        faults_file=Path(env.get("CODERIG_SIM_FAULTS") or FAULTS_FILE),
        driver_file=Path(env.get("CODERIG_SIM_DRIVER_FILE") or DRIVER_FILE),
        time_scale=float(env.get("CODERIG_SIM_TIME_SCALE") or 1.0),
    )
