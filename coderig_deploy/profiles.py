"""Hardware profiles: one YAML file each, validated, with `extends:` for small variations.

A profile names the hardware it is for, the driver and Ollama it installs, the
model and context it serves and what the smoke benchmark must measure. Loading
one validates it completely: unknown keys, bad values and names the catalog does
not know are errors that name the file and the line.
"""

from __future__ import annotations

import difflib
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coderig_deploy.catalog import load_catalog
from coderig_deploy.confine import store_path_problem
from coderig_deploy.driver_branches import branch_problem, default_branch
from coderig_deploy.errors import ProfileError, UnknownNameError
from coderig_deploy.planner import MAX_GPUS, KvCache, Plan, make_plan
from coderig_deploy.resources import shipped_dir

# Values that end up in a systemd unit, a shell command or a URL are held to
# these shapes, so a profile cannot smuggle a newline, quote or `;` into them.
# pydantic checks `pattern` with the Rust regex engine, where `$` is the end of
# the text (never before a trailing newline): each pattern is a full match.
SAFE_DURATION = r"^-?[0-9]{1,9}(ns|us|ms|s|m|h)?$"
SAFE_HOSTPORT = r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$"
SAFE_PATH = r"^/[A-Za-z0-9._/\-]+$"
SAFE_URL = r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/+\-]*)?$"
SAFE_TAG = r"^[a-z0-9][a-z0-9._\-/]*:[A-Za-z0-9._\-]+$"
SAFE_VERSION = r"^[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?$"
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
# A container image pinned by digest: [registry[:port]/]path@sha256:<64 hex>.
SAFE_IMAGE = r"^[a-z0-9][a-z0-9._\-]*(:[0-9]{1,5})?(/[a-z0-9][a-z0-9._\-]*)+@sha256:[0-9a-f]{64}$"
DESCRIPTION_MAX = 300
# Integrity pins: a sha256 digest as `sha256:<64 lowercase hex>`; an OpenPGP key
# fingerprint as 40 (v4) or 64 (v5/v6) hex digits, spaces allowed as gpg prints them.
SHA256_PIN = r"^sha256:[0-9a-f]{64}$"
KEY_FINGERPRINT = r"^[0-9A-Fa-f ]{40,80}$"


def one_printable_line(value: str) -> str:
    """`value` when it is one line of printable text (it lands in YAML and reports); else ValueError."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must be one line of printable text (no tab, newline or control character)")
    return value


def port_problem(port: int) -> str | None:
    """Why `port` is no TCP port a client can reach (0 is "any free port" to a server), or None.
    The patterns hold ports to five digits only; every host:port taken is checked here."""
    return None if 1 <= port <= 65535 else f"port {port} is not a TCP port (1-65535)"


def host_and_port(value: str, example: str) -> str:
    """`value` when it is host:port as Go's net.SplitHostPort (Ollama's) reads it; else ValueError.

    `::1:11434` is not ::1 on port 11434 (nor is `::1` port 1): only brackets say where an
    IPv6 address ends. `example` shows the bracketed form in the message."""
    host, _, port = value.rpartition(":")
    if any(c in host for c in ":[]") and not re.fullmatch(r"\[[^\[\]]+\]", host):
        raise ValueError(f"{value!r}: write an IPv6 address in brackets before its port, e.g. {example}")
    problem = port_problem(int(port))
    if problem:
        raise ValueError(f"{value!r}: {problem}")
    return value


def registry_host_and_port(value: str) -> str:
    """`value` when a model name can start with it (host/namespace/model:tag); else ValueError.

    Ollama's name parser takes letters, digits, `.`, `-` and `_` in the host part (and the
    port's `:`): an IPv6 registry, bracketed or not, makes every model name invalid."""
    if any(c in value.rpartition(":")[0] for c in ":[]"):
        raise ValueError(f"{value!r}: Ollama's model names cannot hold an IPv6 address (bracketed or not): "
                         "name the registry by a host name the hosts resolve, or by an IPv4 address")
    return host_and_port(value, "mirror.lan:5000")


def no_dot_segments(value: str) -> str:
    """`value` when no part of the model name (between `/`) and not its tag is `.` or `..`; else
    ValueError. Ollama files a model under <store>/manifests/<host>/<namespace>/<name>/<tag>,
    and SAFE_TAG alone lets such a part climb out of that tree."""
    if any(part in (".", "..") for part in re.split(r"[/:]", value)):
        raise ValueError(f"{value!r} has a '.' or '..' path segment; each part of a model name and its "
                         "tag needs a letter, digit, _ or -")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hardware(_Strict):
    gpu: str = Field(description="Catalog slug of the GPU model, e.g. rtx-4090")
    count: int = Field(ge=1, le=MAX_GPUS, description="Number of such cards (at least one)")
    min_vram_mib: int = Field(ge=0, le=1_048_576, description="Memory each card must report at least")
    min_ram_gib: int = Field(default=16, ge=1, le=65_536, description="System RAM the host must have")
    min_disk_gib: int = Field(default=50, ge=1, le=1_048_576, description="Free disk at the model store")

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, v: str) -> str:
        try:
            return load_catalog().gpu(v).slug
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _vram_the_card_has(self) -> Hardware:
        total = load_catalog().gpu(self.gpu).vram_mib
        if self.min_vram_mib > total:
            raise ValueError(f"min_vram_mib {self.min_vram_mib} is more than a {self.gpu} has ({total} MiB)")
        return self


class Driver(_Strict):
    branch: int = Field(ge=550, le=9999, description="NVIDIA driver branch; 550+ (Ollama's minimum); "
                                                    "default: the GPU architecture's (data/driver_arch.tsv)")
    open_kernel_modules: bool = Field(default=True, description="Ada and newer use the open kernel modules")
    source: Literal["distro", "cuda-repo", "local-repo"] = "cuda-repo"
    secure_boot: Literal["refuse", "sign", "allow"] = Field(
        default="refuse",
        description="Secure Boot on and the module unsigned: refuse the host before any change, sign "
                    "(DKMS signs with a MOK; its enrollment is staged for the console) or allow (the "
                    "host's firmware does not enforce it)",
    )
    local_repo_url: str | None = Field(
        default=None, pattern=SAFE_URL, description="source local-repo: the apt repository hosts install from"
    )
    local_repo_key_url: str | None = Field(
        default=None, pattern=SAFE_URL, description="source local-repo: the repository's signing key"
    )
    repo_key_fingerprint: str | None = Field(
        default=None, pattern=KEY_FINGERPRINT,
        description="Fingerprint of the repository signing key (local-repo key, or the key cuda-keyring "
                    "installs); checked on the host before the key is trusted",
    )
    keyring_sha256: str | None = Field(
        default=None, pattern=SHA256_PIN, description="source cuda-repo: sha256:<hex> of the cuda-keyring .deb"
    )

    @field_validator("repo_key_fingerprint")
    @classmethod
    def _fingerprint(cls, v: str | None) -> str | None:
        if v is None:
            return v
        compact = v.replace(" ", "").upper()
        if len(compact) not in (40, 64):
            raise ValueError("a key fingerprint has 40 (OpenPGP v4) or 64 (v5/v6) hex digits")
        return compact

    @model_validator(mode="after")
    def _local_repo_named(self) -> Driver:
        if self.source == "local-repo" and not self.local_repo_url:
            raise ValueError("source local-repo needs local_repo_url (the apt repository the hosts can reach)")
        return self


class Ollama(_Strict):
    version: str = Field(pattern=SAFE_VERSION)
    host: str = Field(default="127.0.0.1:11434", pattern=SAFE_HOSTPORT, description="Bind address (no auth!)")
    keep_alive: str = Field(default="30m", pattern=SAFE_DURATION)
    max_loaded_models: int = Field(default=1, ge=0, le=64)
    num_parallel: int = Field(default=1, ge=1, le=64)
    flash_attention: bool = True
    kv_cache_type: KvCache = "f16"
    models_dir: str = Field(default="/usr/share/ollama/.ollama/models", max_length=200, pattern=SAFE_PATH)
    expose: bool = Field(default=False, description="Must be true to bind anything but loopback")
    archive_sha256: str | None = Field(
        default=None, pattern=SHA256_PIN, description="sha256:<hex> of the release archive (a pin)"
    )
    runtime: Literal["native", "docker"] = Field(
        default="native", description="native: the release archive under systemd; docker: the container image")
    image: str | None = Field(
        default=None, pattern=SAFE_IMAGE, max_length=300,
        description="runtime docker: the Ollama image pinned by digest, e.g. docker.io/ollama/ollama@sha256:<hex>")

    @field_validator("host")
    @classmethod
    def _host_and_port(cls, v: str) -> str:
        # Ollama reads OLLAMA_HOST with net.SplitHostPort; the loopback check below, too.
        return host_and_port(v, "[::1]:11434")

    @field_validator("models_dir")
    @classmethod
    def _confined_store(cls, v: str) -> str:
        problem = store_path_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _loopback_unless_exposed(self) -> Ollama:
        bind = self.host.rsplit(":", 1)[0].strip("[]")
        if bind not in ("127.0.0.1", "localhost", "::1") and not self.expose:
            raise ValueError(
                f"host {self.host} exposes Ollama, which has no authentication, beyond this machine; "
                "set ollama.expose: true to mean it"
            )
        return self


ModelRole = Literal["chat", "autocomplete", "embeddings"]


class ModelRef(_Strict):
    tag: str = Field(pattern=SAFE_TAG, description="Ollama tag, e.g. qwen2.5-coder:32b-instruct-q4_K_M")
    num_ctx: int = Field(ge=256, le=1_048_576)
    role: ModelRole = Field(default="chat", description="What editors use it for: chat, autocomplete (FIM) "
                                                        "or embeddings")
    variant: str | None = Field(default=None, pattern=SAFE_TAG, description="Name of the num_ctx variant")
    manifest_digest: str | None = Field(
        default=None, pattern=SHA256_PIN,
        description="sha256:<hex> of the model's manifest in the registry it is pulled from (a pin)",
    )

    @field_validator("tag")
    @classmethod
    def _known_model(cls, v: str) -> str:
        try:
            load_catalog().model(v)
        except UnknownNameError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("tag", "variant")
    @classmethod
    def _no_dot_segments(cls, v: str | None) -> str | None:
        return v if v is None else no_dot_segments(v)

    @property
    def variant_name(self) -> str:
        """`coderig/qwen2.5-coder-32b:32k` unless the profile names it."""
        if self.variant:
            return self.variant
        key = load_catalog().model(self.tag).model.key
        ctx = f"{self.num_ctx // 1024}k" if self.num_ctx % 1024 == 0 else str(self.num_ctx)
        return f"coderig/{key}:{ctx}"


class Expectations(_Strict):
    decode_tok_s: float = Field(gt=0, le=100_000, allow_inf_nan=False,
                                description="Decode speed the seed guide promises")
    tolerance_tok_s: float = Field(ge=0, le=100_000, allow_inf_nan=False, description="How far below it still passes")
    gpu_percent: int = Field(default=100, ge=0, le=100)
    chat_ttft_ms: float | None = Field(default=None, gt=0, le=600_000, allow_inf_nan=False,
                                       description="Time to first token a chat answer may take (editor checks)")
    fim_ttft_ms: float | None = Field(default=None, gt=0, le=600_000, allow_inf_nan=False,
                                      description="Time to first token an autocompletion may take (editor checks)")

    @model_validator(mode="after")
    def _a_check_that_can_fail(self) -> Expectations:
        # The decode check passes at decode_tok_s - tolerance_tok_s: at zero or below, a host that
        # generates nothing would pass it.
        if self.tolerance_tok_s >= self.decode_tok_s:
            raise ValueError(f"tolerance_tok_s {self.tolerance_tok_s:g} is not below decode_tok_s "
                             f"{self.decode_tok_s:g}: the decode check could never fail")
        return self


class Profile(_Strict):
    name: str = Field(max_length=64, description="Letters, digits and ._- (the file's stem)")
    description: str = Field(max_length=DESCRIPTION_MAX, description="One line of printable text")
    source: Path | None = Field(default=None, exclude=True)
    hardware: Hardware
    driver: Driver
    ollama: Ollama
    model: ModelRef
    models: list[ModelRef] = Field(default=[], max_length=8,
                                   description="More models served beside `model`, each with its role")
    expect: Expectations
    model_registry: str | None = Field(default=None, pattern=SAFE_HOSTPORT)

    @field_validator("model_registry")
    @classmethod
    def _registry_host_and_port(cls, v: str | None) -> str | None:
        return v if v is None else registry_host_and_port(v)

    @model_validator(mode="before")
    @classmethod
    def _default_branch(cls, data: Any) -> Any:
        """A profile without driver.branch gets its GPU architecture's default (data/driver_arch.tsv)."""
        if not isinstance(data, dict) or not isinstance(data.get("driver"), dict) or "branch" in data["driver"]:
            return data
        gpu = data.get("hardware", {}).get("gpu") if isinstance(data.get("hardware"), dict) else None
        try:
            architecture = load_catalog().gpu(str(gpu)).architecture
        except UnknownNameError:
            return data  # the hardware error is the one to report
        return {**data, "driver": {**data["driver"], "branch": default_branch(architecture)}}

    @model_validator(mode="after")
    def _branch_offered(self) -> Profile:
        architecture = load_catalog().gpu(self.hardware.gpu).architecture
        problem = branch_problem(self.driver.branch, architecture, self.driver.source)
        if problem:
            raise ValueError(f"driver.branch: {problem}")
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        # It names the rendered project's play and group: no Jinja, quote or newline.
        if not re.fullmatch(SAFE_NAME, v):
            raise ValueError(f"{v!r} is not a valid profile name: a letter or digit, then letters, digits and ._-")
        return v

    @field_validator("description")
    @classmethod
    def _one_printable_line(cls, v: str) -> str:
        # The same rule as the rendered project's (project.ProjectSpec), checked here first.
        return one_printable_line(v)

    @model_validator(mode="after")
    def _models_fit_together(self) -> Profile:
        from coderig_deploy.editor.together import together_problem
        problem = together_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def all_models(self) -> list[ModelRef]:
        """`model` first, then `models`: everything the host serves side by side."""
        return [self.model, *self.models]

    @cached_property
    def plan(self) -> Plan:
        return make_plan(
            self.model.tag,
            [self.hardware.gpu] * self.hardware.count,
            self.model.num_ctx,
            kv_cache=self.ollama.kv_cache_type,
            flash_attention=self.ollama.flash_attention,
            parallel=self.ollama.num_parallel,
        )

    def ollama_env(self) -> dict[str, str]:
        """Exactly the environment the Ollama service gets (the drop-in's lines)."""
        o = self.ollama
        return {
            "OLLAMA_HOST": o.host,
            "OLLAMA_MODELS": o.models_dir,
            "OLLAMA_KEEP_ALIVE": o.keep_alive,
            "OLLAMA_MAX_LOADED_MODELS": str(o.max_loaded_models),
            "OLLAMA_NUM_PARALLEL": str(o.num_parallel),
            "OLLAMA_FLASH_ATTENTION": "1" if o.flash_attention else "0",
            "OLLAMA_KV_CACHE_TYPE": o.kv_cache_type,
            "OLLAMA_CONTEXT_LENGTH": str(self.model.num_ctx),
        }


# --- loading -------------------------------------------------------------------


def profile_dirs(extra: Path | None = None) -> list[Path]:
    """Directories searched for profiles: the user's first, then the shipped ones."""
    return [p for p in (extra, shipped_dir("profiles")) if p is not None]


def list_profiles(extra: Path | None = None) -> list[str]:
    names: set[str] = set()
    for d in profile_dirs(extra):
        if not d.is_dir():
            raise ProfileError(f"{d}: profiles directory does not exist")
        names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def find_profile(name: str, extra: Path | None = None) -> Path:
    for d in profile_dirs(extra):
        path = d / f"{name}.yaml"
        if path.is_file():
            return path
    close = difflib.get_close_matches(name, list_profiles(extra), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise UnknownNameError(f"unknown profile {name!r}.{hint} `coderig-deploy profiles list` shows them all.")


def load_profile(name_or_path: str | Path, extra: Path | None = None) -> Profile:
    """Load a profile by name (searched in `extra`, then the shipped ones) or by file path."""
    text = str(name_or_path)
    path = Path(text) if text.endswith((".yaml", ".yml")) or "/" in text else find_profile(text, extra)
    return load_profile_file(path, extra)


def load_profile_file(path: Path, extra: Path | None = None) -> Profile:
    data, lines = _merged(path, extra, seen=())
    data.setdefault("name", path.stem)
    try:
        profile = Profile.model_validate({**data, "source": path})
    except ValidationError as exc:
        raise ProfileError(_describe(path, exc, lines)) from None
    except UnknownNameError as exc:
        raise ProfileError(f"{path}: {exc}") from None
    return profile


MAX_EXTENDS = 32  # links of an `extends:` chain (each is a file read and merged)


def _merged(path: Path, extra: Path | None, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The profile's mapping with its `extends:` chain applied, and where each key was written."""
    if path in seen:
        raise ProfileError(f"{path}: `extends` loops back to itself ({' -> '.join(p.stem for p in seen)})")
    if len(seen) >= MAX_EXTENDS:
        raise ProfileError(f"{seen[0]}: `extends` goes {MAX_EXTENDS} profiles deep ({seen[0].stem} -> ... -> "
                           f"{path.stem}); a profile chain is a few links long")
    data, lines = _read_yaml(path)
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data, lines
    if not isinstance(parent_name, str):
        raise ProfileError(f"{lines.get(('extends',), str(path))}: extends must be a profile name")
    try:
        parent_path = find_profile(parent_name, extra)
    except UnknownNameError as exc:
        raise ProfileError(f"{lines.get(('extends',), str(path))}: {exc}") from None
    base, base_lines = _merged(parent_path, extra, seen + (path,))
    base.pop("name", None)
    return _deep_merge(base, data), {**base_lines, **lines}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        byte = exc.object[exc.start]
        raise ProfileError(f"{path}:{line}: not UTF-8 text (byte {byte:#04x}); save it as UTF-8") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _refuse_alias_bombs(node, path)
        _refuse_duplicate_keys(node, path)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ProfileError(f"{path}: invalid YAML: nested too deeply for a profile") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a YAML mapping")
    return data, _key_lines(node, path)


# A profile is a few dozen values; this many, counted with every alias written out, is an alias bomb
# (`b: [*a, *a, ...]` nested: each level multiplies), which would take minutes to walk and validate.
MAX_YAML_NODES = 10_000


def _refuse_alias_bombs(node: Any, path: Path) -> None:
    """Refuse a document whose aliases expand to more than MAX_YAML_NODES nodes. Counted per distinct node
    (an alias is the same node object again), so the count itself takes time in the document's size."""
    sizes: dict[int, int] = {}

    def size(n: Any) -> int:
        if id(n) not in sizes:
            children = n.value if isinstance(n, yaml.SequenceNode) else \
                [c for pair in n.value for c in pair] if isinstance(n, yaml.MappingNode) else []
            sizes[id(n)] = min(1 + sum(size(c) for c in children), MAX_YAML_NODES + 1)
        return sizes[id(n)]

    if node is not None and size(node) > MAX_YAML_NODES:
        raise ProfileError(f"{path}: its aliases (*name) expand to more than {MAX_YAML_NODES} YAML values; a "
                           "profile needs a few dozen (use `extends:` to share settings between profiles)")


def _refuse_duplicate_keys(node: Any, path: Path) -> None:
    """YAML lets a later key silently replace an earlier one; in a profile that hides a mistake."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            if key in first:
                raise ProfileError(f"{path}:{line}: duplicate key {key!r} (first written on line {first[key]})")
            first[key] = line
            _refuse_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path)


def _key_lines(node: Any, path: Path, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Map each key path to `file:line` where it is written."""
    found: dict[tuple[str, ...], str] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = prefix + (str(key_node.value),)
            found[key] = f"{path}:{key_node.start_mark.line + 1}"
            found.update(_key_lines(value_node, path, key))
    return found


def _describe(path: Path, exc: ValidationError, lines: dict[tuple[str, ...], str]) -> str:
    """One `file:line: field: message` line per problem, the file named once per line."""
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        where = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), str(path))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (not part of the profile schema)"
        out.append(f"{where}: {'.'.join(loc) + ': ' if loc else ''}{message}")  # no field: the whole profile
    return "\n".join(out)
