"""What a rendered Ansible project is made of: validated, template-ready data.

`ProjectSpec` is everything `render` puts into the templates. Every string that
ends up in YAML read by Ansible, in a systemd unit or in an SSH command line is
held to a narrow shape here, so a profile or a host argument cannot inject
Jinja (`{{ }}`), a newline, a quote or a systemd specifier (`%`). `spec_for`
builds one from a Profile, its Plan and the target hosts.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from coderig_deploy import pins
from coderig_deploy.bundle.install import BundleInstall
from coderig_deploy.catalog import load_catalog
from coderig_deploy.container_spec import ContainerSpec, container_spec
from coderig_deploy.driver_branches import Offer, offers
from coderig_deploy.profiles import (
    DESCRIPTION_MAX,
    Profile,
    no_dot_segments,
    one_printable_line,
    registry_host_and_port,
)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,62}))*\.?$")
_IPV4 = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:]+$")
_HOSTPORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
_ENV_NAME = re.compile(r"^OLLAMA_[A-Z0-9_]+$")
_ENV_VALUE = re.compile(r"^[A-Za-z0-9._:/+\-\[\]]*$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9._\-/]*:[A-Za-z0-9._\-]+$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?$")
_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/+\-]*)?$")
_FILE_URL = re.compile(r"^file:/[A-Za-z0-9._/@+-]*$")
_CHECKSUM = re.compile(r"^sha256:([0-9a-f]{64}|https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/+\-]*)?)$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_FINGERPRINT = re.compile(r"^([0-9A-F]{40}|[0-9A-F]{64})$")
_WARNING = re.compile(r"^[A-Za-z0-9 ._:/<>()~+\[\]\-]+$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_PCI_ID = re.compile(r"^[0-9a-f]{4}$")
_GPU_NAME = re.compile(r"^[A-Za-z0-9 ._\-()]+$")
_BENCH_ARG = re.compile(r"^[A-Za-z0-9._:/=,+\-]+$")
# Group names of the rendered inventory (templates/inventory.yml.j2: `coderig`, and
# render.group_name's `coderig_<profile>` in a fleet) and Ansible's own `all` and `ungrouped`.
_GROUP_NAME = re.compile(r"^(all|ungrouped|coderig|coderig_[A-Za-z0-9_]*)$")


def _matching(pattern: re.Pattern[str], what: str):  # type: ignore[no-untyped-def]
    def check(value: str) -> str:
        # fullmatch: with match(), `$` also matches before a trailing newline ("budget\n").
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


def _host(value: str) -> str:
    if _IPV4.fullmatch(value) or (":" in value and _IPV6.fullmatch(value)) or _HOSTNAME.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a valid host name or IP address")


def _not_a_group(value: str) -> str:
    # Ansible takes such a host for the group ("Found both group and host with same name"),
    # and the play would run on that one name instead of every host of the group.
    if _GROUP_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is the name of a group in the rendered inventory (all, ungrouped, "
                         "coderig, coderig_<profile>); give the host another inventory name and "
                         "its address as ansible_host")
    return value


HostName = Annotated[str, AfterValidator(_host)]
Sha256Pin = Annotated[str, _matching(_SHA256, "pin (sha256:<64 lowercase hex>)")]
SafePath = Annotated[str, _matching(_PATH, "absolute path (letters, digits, ._/@+-)")]
Tag = Annotated[str, _matching(_TAG, "model tag"), AfterValidator(no_dot_segments)]
Word = Annotated[str, _matching(_WORD, "name")]
Registry = Annotated[str, _matching(_HOSTPORT, "host:port"), AfterValidator(registry_host_and_port)]


# An air-gapped install (apply --bundle) turns Ollama's cloud features off, native or in a
# container (validate --airgapped and verify --bundle check it).
AIRGAPPED_ENV = {"OLLAMA_NO_CLOUD": "1"}

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetHost(_Strict):
    """One host of the inventory and how Ansible reaches it."""

    name: Annotated[HostName, AfterValidator(_not_a_group)] = Field(description="Inventory name")
    address: HostName | None = Field(default=None, description="ansible_host, when not the name")
    port: int | None = Field(default=None, ge=1, le=65535)
    user: Annotated[str, _matching(_USER, "user name")] | None = None
    key_file: SafePath | None = Field(default=None, description="SSH private key (path only)")
    known_hosts: SafePath | None = Field(default=None, description="known_hosts file to check keys against")
    connection: Literal["ssh", "local"] = "ssh"
    become: bool = Field(default=False, description="Use sudo (a non-root user)")
    python: SafePath | None = Field(default=None, description="ansible_python_interpreter")


class GpuRequirement(_Strict):
    slug: Word
    names: list[Annotated[str, _matching(_GPU_NAME, "GPU name")]]
    pci_ids: list[Annotated[str, _matching(_PCI_ID, "PCI device id (4 lowercase hex digits)")]]
    count: int = Field(ge=1, le=16)
    min_vram_mib: int = Field(ge=0, le=1_048_576)


class GpuPlan(_Strict):
    gpu: Word
    used_mib: int
    total_mib: int


class PlanSummary(_Strict):
    """The plan's figures the report and the benchmark compare against."""

    fits: bool
    vram_mib: int
    per_gpu: list[GpuPlan]
    weights_mib: int
    kv_cache_mib: int
    gpu_fraction: float
    decode_tok_s: float


class Expect(_Strict):
    decode_tok_s: float
    tolerance_tok_s: float
    gpu_percent: int
    chat_ttft_ms: float | None = None
    fim_ttft_ms: float | None = None


class ExtraModel(_Strict):
    """A model served beside the profile's main one (e.g. the FIM model next to the chat model)."""

    tag: Tag
    variant: Tag
    num_ctx: int = Field(ge=256)
    quantization: Word
    role: Word
    manifest_digest: Sha256Pin | None = None


class BenchmarkSeam(_Strict):
    """The smoke role's benchmark: a program shipped in the project's files/ and its arguments."""

    program: Annotated[str, _matching(_WORD, "file name")]
    args: list[Annotated[str, _matching(_BENCH_ARG, "benchmark argument")]]


class ProjectSpec(_Strict):
    """Everything one rendered project holds."""

    profile: Word
    description: str = Field(max_length=DESCRIPTION_MAX)
    hosts: list[TargetHost] = Field(min_length=1)
    forks: int = Field(default=5, ge=1, le=200)
    gpu: GpuRequirement
    min_ram_gib: int = Field(ge=0)
    min_disk_gib: int = Field(ge=0)
    resource_policy: Literal["refuse", "warn"] = "refuse"
    secure_boot: Literal["refuse", "sign", "allow"] = "refuse"
    driver_branch: int = Field(ge=550)
    driver_open_kernel_modules: bool
    driver_source: Literal["distro", "cuda-repo", "local-repo"]
    driver_offers: dict[str, Offer] = Field(default_factory=dict, description="Per OS: packages, pin, signed modules")
    driver_local_repo_url: Annotated[str, _matching(_URL, "http(s) URL")] | \
        Annotated[str, _matching(_FILE_URL, "file: URL")] | None = None
    driver_local_repo_trusted: bool = Field(default=False, description="A file: repository (apply --bundle): "
                                            "vouched for by the verified bundle, no signing key")
    driver_local_repo_key_url: Annotated[str, _matching(_URL, "http(s) URL")] | None = None
    driver_repo_key_fingerprint: Annotated[str, _matching(_FINGERPRINT, "key fingerprint")] | None = None
    driver_keyring_checksum: Sha256Pin | None = None
    allow_reboot: bool = False
    ollama_version: Annotated[str, _matching(_VERSION, "version")]
    ollama_env: dict[str, str]
    ollama_archive_url: Annotated[str, _matching(_URL, "http(s) URL")] | None = None
    ollama_archive_checksum: Annotated[str, _matching(_CHECKSUM, "checksum (sha256:<hex> or sha256:<url>)")] | None = None
    model_tag: Tag
    model_variant: Tag
    model_num_ctx: int = Field(ge=256)
    model_quantization: Word
    model_registry: Registry | None = None
    model_manifest_digest: Sha256Pin | None = None
    extra_models: list[ExtraModel] = Field(default=[], description="The profile's `models`, beside `model_*`")
    allow_unpinned: bool = False
    unpinned: list[Annotated[str, _matching(_WARNING, "warning")]] = Field(
        default_factory=list, description="Artifacts fetched without a pin (allow_unpinned): report warnings")
    expect: Expect
    plan: PlanSummary
    benchmark: BenchmarkSeam | None = None
    bundle: BundleInstall | None = Field(default=None, description="apply --bundle: pieces copied from the controller")
    container: ContainerSpec | None = Field(default=None, description="ollama.runtime docker: the Ollama container")

    @field_validator("description")
    @classmethod
    def _one_printable_line(cls, value: str) -> str:
        return one_printable_line(value)

    @field_validator("ollama_env")
    @classmethod
    def _safe_env(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"environment name {name!r} is not OLLAMA_<UPPER_CASE>")
            if not _ENV_VALUE.fullmatch(value):
                raise ValueError(
                    f"{name}={value!r}: only letters, digits and ._:/+-[] may go into the systemd drop-in"
                )
        return env

    @model_validator(mode="after")
    def _unique_hosts(self) -> ProjectSpec:
        names = [h.name for h in self.hosts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"host {', '.join(duplicates)} given more than once")
        return self

    @property
    def api_url(self) -> str:
        """Where a client on the host reaches Ollama (a 0.0.0.0 bind on loopback)."""
        host = self.ollama_env.get("OLLAMA_HOST", "127.0.0.1:11434")
        bind, _, port = host.rpartition(":")
        if bind in ("", "0.0.0.0", "[::]", "::"):
            bind = "127.0.0.1"
        return f"http://{bind}:{port}"


class RenderOptions(_Strict):
    """What the command line adds to a profile."""

    forks: int = Field(default=5, ge=1, le=200)
    allow_reboot: bool = False
    model_registry: Registry | None = None
    ollama_archive_url: Annotated[str, _matching(_URL, "http(s) URL")] | None = None
    ollama_archive_checksum: Annotated[str, _matching(_CHECKSUM, "checksum")] | None = None
    model_manifest_digest: Sha256Pin | None = None
    extra_manifest_digests: dict[str, Sha256Pin] = Field(
        default={}, description="Pins of the profile's `models` by tag (a sandbox lab knows them)")
    allow_unpinned: bool = Field(default=False, description="Accept plain-HTTP sources without a pin (warned)")
    resource_policy: Literal["refuse", "warn"] = "refuse"
    benchmark: BenchmarkSeam | None = None
    bundle: BundleInstall | None = None
    driver_local_repo: Annotated[str, _matching(_FILE_URL, "file: URL")] | None = Field(
        default=None, description="apply --bundle: the bundle's apt repository on the host (trusted)")
    ollama_image: str | None = Field(default=None, description="runtime docker: the image instead of the profile's")
    container_repo_url: str | None = None
    container_repo_key_fingerprint: str | None = None
    container_insecure_registries: list[str] = Field(default_factory=list)


def spec_for(profile: Profile, hosts: list[TargetHost], options: RenderOptions | None = None) -> ProjectSpec:
    """The project for `profile` on `hosts`: the plan is computed once, here, on the controller."""
    opts = options or RenderOptions()
    catalog = load_catalog()
    gpu = catalog.gpu(profile.hardware.gpu)
    plan = profile.plan
    archive_checksum, archive_unpinned = pins.archive_checksum(
        opts.ollama_archive_url, opts.ollama_archive_checksum or profile.ollama.archive_sha256)
    registry = opts.model_registry or profile.model_registry
    digest = opts.model_manifest_digest or profile.model.manifest_digest
    driver = profile.driver
    key_url = driver.local_repo_key_url if driver.source == "local-repo" and not opts.driver_local_repo else None
    extra = _extra_models(profile, opts)
    unpinned = pins.enforce([archive_unpinned, pins.manifest_digest(registry, digest),
                             *[pins.manifest_digest(registry, m.manifest_digest) for m in extra],
                             pins.repo_key(key_url, driver.repo_key_fingerprint)], opts.allow_unpinned)
    return ProjectSpec(
        profile=profile.name,
        description=profile.description,
        hosts=hosts,
        forks=opts.forks,
        gpu=GpuRequirement(
            slug=gpu.slug, names=[gpu.name], pci_ids=[gpu.pci_device_id.lower()],
            count=profile.hardware.count, min_vram_mib=profile.hardware.min_vram_mib,
        ),
        min_ram_gib=profile.hardware.min_ram_gib,
        min_disk_gib=profile.hardware.min_disk_gib,
        resource_policy=opts.resource_policy,
        secure_boot=profile.driver.secure_boot,
        driver_branch=profile.driver.branch,
        driver_open_kernel_modules=profile.driver.open_kernel_modules,
        driver_source="local-repo" if opts.driver_local_repo else profile.driver.source,
        driver_offers=offers(driver.branch, "local-repo" if opts.driver_local_repo else driver.source,
                             driver.open_kernel_modules),
        driver_local_repo_url=opts.driver_local_repo or profile.driver.local_repo_url,
        driver_local_repo_key_url=None if opts.driver_local_repo else profile.driver.local_repo_key_url,
        driver_local_repo_trusted=opts.driver_local_repo is not None,
        driver_repo_key_fingerprint=driver.repo_key_fingerprint,
        driver_keyring_checksum=driver.keyring_sha256,
        allow_reboot=opts.allow_reboot,
        ollama_version=profile.ollama.version,
        # An air-gapped install turns Ollama's cloud features off (validate --airgapped checks it).
        ollama_env={**profile.ollama_env(), **(AIRGAPPED_ENV if opts.bundle is not None else {})},
        ollama_archive_url=opts.ollama_archive_url,
        ollama_archive_checksum=archive_checksum,
        model_tag=profile.model.tag,
        model_variant=profile.model.variant_name,
        model_num_ctx=profile.model.num_ctx,
        model_quantization=plan.quant,
        model_registry=registry,
        model_manifest_digest=digest,
        extra_models=extra,
        allow_unpinned=opts.allow_unpinned,
        unpinned=unpinned,
        expect=Expect(**profile.expect.model_dump(exclude_none=True)),
        plan=PlanSummary(
            fits=plan.fits, vram_mib=plan.vram_mib,
            per_gpu=[GpuPlan(gpu=g.gpu, used_mib=g.used_mib, total_mib=g.total_mib) for g in plan.per_gpu],
            weights_mib=plan.weights_mib, kv_cache_mib=plan.kv_cache_mib,
            gpu_fraction=plan.gpu_fraction, decode_tok_s=plan.decode_tok_s,
        ),
        benchmark=opts.benchmark,
        bundle=opts.bundle,
        container=container_spec(profile, opts.ollama_image, opts.container_repo_url,
                                 opts.container_repo_key_fingerprint, opts.container_insecure_registries,
                                 AIRGAPPED_ENV if opts.bundle is not None else None),
    )


def _extra_models(profile: Profile, opts: RenderOptions) -> list[ExtraModel]:
    from coderig_deploy.editor.together import model_plan
    return [ExtraModel(tag=ref.tag, variant=ref.variant_name, num_ctx=ref.num_ctx, role=ref.role,
                       quantization=model_plan(profile, ref).quant,
                       manifest_digest=ref.manifest_digest or opts.extra_manifest_digests.get(ref.tag))
            for ref in profile.models]
