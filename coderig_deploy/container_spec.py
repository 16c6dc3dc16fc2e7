"""What `ollama.runtime: docker` renders: the container the container_runtime role runs.

Pure: the profile and the command line's sources in, the container's settings out.
Inside the container Ollama listens on all of its own interfaces (it is alone in its
network namespace); what reaches the host is the published port, bound where the
profile's `ollama.host` says (127.0.0.1 unless `ollama.expose`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import SAFE_HOSTPORT, SAFE_IMAGE, SAFE_URL, Profile

CONTAINER_PORT = 11434


class ContainerSpec(BaseModel):
    """The Ollama container of one profile (rendered into container_runtime_* variables)."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(pattern=SAFE_IMAGE, description="pinned by digest")
    publish: str = Field(pattern=SAFE_HOSTPORT, description="host address:port the API is published on")
    container_port: int = CONTAINER_PORT
    env: dict[str, str] = Field(description="the planned environment, OLLAMA_HOST as seen inside")
    repo_url: str | None = Field(default=None, pattern=SAFE_URL,
                                 description="apt repository with Docker Engine and the toolkit")
    repo_key_fingerprint: str | None = Field(default=None, pattern=r"^[0-9A-F]{40}$")
    insecure_registries: list[str] = Field(default_factory=list)


def container_spec(profile: Profile, image: str | None = None, repo_url: str | None = None,
                   repo_key_fingerprint: str | None = None,
                   insecure_registries: list[str] | None = None,
                   extra_env: dict[str, str] | None = None) -> ContainerSpec | None:
    """None for `runtime: native`; the container for `runtime: docker` (an image is required);
    `extra_env` is what the run adds to the profile's (an air-gapped install's OLLAMA_NO_CLOUD)."""
    if profile.ollama.runtime != "docker":
        return None
    pinned = image or profile.ollama.image
    if pinned is None:
        raise UserInputError(f"profile {profile.name}: ollama.runtime docker needs ollama.image, "
                             "the image pinned by digest (name@sha256:<hex>)")
    env = {**profile.ollama_env(), **(extra_env or {}), "OLLAMA_HOST": f"0.0.0.0:{CONTAINER_PORT}"}
    return ContainerSpec(image=pinned, publish=profile.ollama.host, env=env, repo_url=repo_url,
                         repo_key_fingerprint=repo_key_fingerprint,
                         insecure_registries=insecure_registries or [])
