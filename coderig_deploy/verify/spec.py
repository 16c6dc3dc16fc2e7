"""What a host of a profile must look like, as plain data the checks read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from coderig_deploy.profiles import Profile
from coderig_deploy.smoke import editor_args


@dataclass(frozen=True)
class VerifySpec:
    """Expected host state; built once on the controller from the Profile."""

    driver_branch: int | None
    ollama_version: str
    ollama_env: dict[str, str]
    bind: str
    model: str
    variant: str
    models_dir: str
    extra_models: list[str] = field(default_factory=list)  # the profile's `models`: tags and variants
    editor_args: list[str] = field(default_factory=list)  # `--editor MODEL=ROLE ...` for the host benchmark
    runtime: str = "native"  # docker: the native unit's checks give way to verify/container.py

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def spec_for(profile: Profile) -> VerifySpec:
    """The expected state of a host provisioned with `profile`."""
    return VerifySpec(
        driver_branch=profile.driver.branch if profile.hardware.count > 0 else None,
        ollama_version=profile.ollama.version, ollama_env=profile.ollama_env(),
        bind=profile.ollama.host, model=profile.model.tag,
        variant=profile.model.variant_name, models_dir=profile.ollama.models_dir,
        extra_models=[n for ref in profile.models for n in (ref.tag, ref.variant_name)],
        editor_args=editor_args(profile), runtime=profile.ollama.runtime)


def manifest_path(models_dir: str, name: str) -> str:
    """Where the model store keeps the manifest of `name` ([host/][namespace/]model[:tag])."""
    head, _, last = name.rpartition("/")
    last, _, tag = last.partition(":")
    parts = [*head.split("/"), last] if head else [last]
    if len(parts) == 1:
        parts = ["library", *parts]
    if len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    return "/".join([models_dir.rstrip("/"), "manifests", *parts, tag or "latest"])
