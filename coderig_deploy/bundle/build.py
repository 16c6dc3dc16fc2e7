"""`bundle build`: everything a site without internet needs, in one directory.

    DIR/profiles/<name>.yaml                      each profile, resolved (no extends)
    DIR/ollama/v<version>/<archive>, sha256sum.txt
    DIR/models/manifests/..., DIR/models/blobs/...  Ollama's store layout
    DIR/apt/*.deb, Packages, Packages.gz, Release   when --debs is given
    DIR/images/sha256-<hex>.tar                   the pinned image of a `runtime: docker` profile
    DIR/bundle.json (written last), bundle.json.sig when signed

Rebuilding into the same directory reuses what is there and verified, and
resumes interrupted downloads from DIR/.partial.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from coderig_deploy import __version__, profiles
from coderig_deploy.bundle import aptrepo, image, models, oci, ollama, sign
from coderig_deploy.bundle.download import PARTIAL_DIR
from coderig_deploy.bundle.files import Progress, atomic_write, publish, sha256_file
from coderig_deploy.bundle.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    AptRepo,
    BundleFile,
    BundleManifest,
    FileKind,
    ImageEntry,
    ModelEntry,
    OllamaEntry,
    ProfileEntry,
)
from coderig_deploy.errors import EnvironmentProblem, UserInputError

DEFAULT_REGISTRY = "https://registry.ollama.ai"
_OURS = ("profiles", "ollama", models.MODELS_DIR, aptrepo.APT_DIR, image.IMAGES_DIR, PARTIAL_DIR)


@dataclass(frozen=True)
class Sources:
    """Where the artifacts come from; `trusted_http` only for the sandbox lab's own servers."""

    registry: str | None = None
    store: Path | None = None
    ollama_base: str = ollama.RELEASES
    trusted_http: bool = False
    ollama_image: str | None = None  # stands in for every docker profile's ollama.image (the lab's simulator)


@dataclass(frozen=True)
class BuildRequest:
    profiles: list[str]
    output: Path
    sources: Sources = field(default_factory=Sources)
    profiles_dir: Path | None = None
    debs: Path | None = None
    sign_key: Path | None = None
    ollama_url: str | None = None
    ollama_sha256: str | None = None  # "sha256:<hex>"
    model_digest: str | None = None  # "sha256:<hex>" of the one model's manifest


def sandbox_sources() -> Sources:
    """The caller's sandbox lab: its artifact server and its registry."""
    from coderig_deploy.sandbox import Lab, services

    urls = services.urls(Lab())
    if "model_registry" not in urls or "ollama_download_base" not in urls:
        raise EnvironmentProblem("--sandbox: the lab's artifact server and registry are not running; "
                                 "run `coderig-deploy sandbox up` first")
    return Sources(registry=urls["model_registry"], ollama_base=urls["ollama_download_base"], trusted_http=True,
                   ollama_image=urls.get("ollama_image"))


def prepare_output(output: Path) -> None:
    """Create DIR, or reuse it when it holds an earlier bundle; refuse a directory of other things."""
    if output.exists() and not output.is_dir():
        raise UserInputError(f"-o {output}: exists and is not a directory")
    if output.is_dir():
        unknown = [p.name for p in output.iterdir() if p.name not in (*_OURS, MANIFEST_NAME, SIGNATURE_NAME)]
        if unknown:
            raise UserInputError(f"-o {output}: not empty and not a bundle (holds {unknown[0]}); "
                                 "choose a new or empty directory")
    try:
        output.mkdir(parents=True, exist_ok=True)
        for stale in (MANIFEST_NAME, SIGNATURE_NAME):  # a half-rebuilt bundle must not look complete
            (output / stale).unlink(missing_ok=True)
    except OSError as exc:
        raise UserInputError(f"-o {output}: {exc.strerror}") from None


def build(request: BuildRequest, progress: Progress | None = None) -> BundleManifest:
    loaded = [profiles.load_profile(name, request.profiles_dir) for name in dict.fromkeys(request.profiles)]
    if not loaded:
        raise UserInputError("give at least one --profile")
    names = [p.name for p in loaded]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise UserInputError(f"two profiles are named {twice!r}; a bundle holds profiles/<name>.yaml once")
    pin = ollama.parse_pin(request.ollama_sha256)
    versions = sorted({p.ollama.version for p in loaded})
    if (request.ollama_url or pin) and len(versions) > 1:
        option = "--ollama-url" if request.ollama_url else "--ollama-sha256"
        raise UserInputError(f"{option} names one archive, but the profiles use Ollama {', '.join(versions)}; "
                             "bundle them separately")
    model_pins = _model_pins(loaded, request)
    _check_inputs(request, versions, pin, sorted({p.model.tag for p in loaded}), model_pins)
    wanted = _images(loaded, request.sources)
    for ref in wanted:
        image.parse_reference(ref)
    out = request.output
    prepare_output(out)
    kinds: dict[str, FileKind] = {}
    known: dict[str, str] = {}  # path -> sha256 already verified (no second pass over big files)
    entries = [_write_profile(out, p, kinds) for p in loaded]
    archives: list[OllamaEntry] = []
    for version in versions:
        url = request.ollama_url or ollama.release_url(version, request.sources.ollama_base)
        entry, checksums = ollama.fetch(out, version, url, pin, request.sources.trusted_http, progress)
        archives.append(entry)
        kinds[entry.path], kinds[checksums], known[entry.path] = "ollama-archive", "ollama-checksums", entry.sha256
    fetched = [_fetch_model(out, tag, request.sources, model_pins.get(tag), progress)
               for tag in sorted({p.model.tag for p in loaded})]
    for model in fetched:
        kinds[model.manifest_path] = "model-manifest"
        for blob in model.blobs:
            kinds[blob.path], known[blob.path] = "model-blob", blob.digest.removeprefix("sha256:")
    images = [_fetch_image(out, ref, request.sources, progress) for ref in wanted]
    kinds.update({entry.path: "container-image" for entry in images})
    apt = _apt(out, request.debs, kinds)
    _prune(out, set(kinds))
    manifest = BundleManifest(
        coderig_version=__version__, created=datetime.now(UTC).replace(microsecond=0),
        files=[_describe(out, path, kind, known.get(path)) for path, kind in sorted(kinds.items())],
        profiles=entries, ollama=archives, models=fetched, apt=apt, images=images)
    _write_manifest(out, manifest.to_json(), request.sign_key)
    shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
    return manifest


def _write_manifest(out: Path, data: bytes, sign_key: Path | None) -> None:
    """bundle.json last, and when signing was asked for, only once its signature exists: a
    failed signing (a wrong passphrase) must not leave a bundle that verifies unsigned."""
    if sign_key is None:
        atomic_write(out / MANIFEST_NAME, data)
        return
    staged = out / PARTIAL_DIR / MANIFEST_NAME
    atomic_write(staged, data)
    publish(sign.sign(staged, sign_key), out / SIGNATURE_NAME)  # the signature covers the bytes, not the name
    publish(staged, out / MANIFEST_NAME)


def _model_pins(loaded: list[profiles.Profile], request: BuildRequest) -> dict[str, str]:
    """The manifest digest each model tag must have: --model-digest (one model), else the profile's
    model.manifest_digest. The sandbox lab's models stand in for the real ones, so only the
    command line pins them."""
    tags = sorted({p.model.tag for p in loaded})
    if request.model_digest is not None:
        if not re.fullmatch(profiles.SHA256_PIN, request.model_digest):
            raise UserInputError(f"--model-digest {request.model_digest!r}: a pin is sha256:<64 lowercase hex digits>")
        if len(tags) > 1:
            raise UserInputError(f"--model-digest pins one model, but the profiles serve {', '.join(tags)}; "
                                 "bundle them separately or pin model.manifest_digest in each profile")
        return {tags[0]: request.model_digest}
    if request.sources.trusted_http:
        return {}
    return {p.model.tag: p.model.manifest_digest for p in loaded if p.model.manifest_digest}


def _check_inputs(request: BuildRequest, versions: list[str], pin: str | None, tags: list[str],
                  model_pins: dict[str, str]) -> None:
    """Every input error before anything is downloaded or written.

    A model manifest read over plain HTTP is only as good as the network, and its digest is
    what bundle.json records and the signature vouches for: so it needs a pin, as in `render`."""
    for version in versions:
        ollama.check_url(request.ollama_url or ollama.release_url(version, request.sources.ollama_base), pin,
                         request.sources.trusted_http)
    for deb in aptrepo.find_debs(request.debs) if request.debs is not None else []:
        aptrepo.control_fields(deb)
    if request.sign_key is not None:
        sign.check_key(request.sign_key)
    if (store := request.sources.store) is not None:
        for tag in tags:
            models.store_layers(store, tag)
    if request.sources.registry is not None:
        oci.base_url(request.sources.registry)
    unpinned = [tag for tag in tags if tag not in model_pins]
    if request.sources.store is None and unpinned and not request.sources.trusted_http \
            and oci.base_url(request.sources.registry or DEFAULT_REGISTRY).startswith("http://"):
        raise UserInputError(f"--registry {request.sources.registry}: plain-HTTP model manifest of {unpinned[0]} "
                             "has no pin, give --model-digest sha256:<hex> or model.manifest_digest")


def _write_profile(out: Path, profile: profiles.Profile, kinds: dict[str, FileKind]) -> ProfileEntry:
    relative = f"profiles/{profile.name}.yaml"
    data = profile.model_dump(mode="json", exclude_none=True)
    atomic_write(out / relative, yaml.safe_dump(data, sort_keys=False).encode())
    kinds[relative] = "profile"
    return ProfileEntry(name=profile.name, path=relative, model=profile.model.tag,
                        ollama_version=profile.ollama.version)


def _fetch_model(out: Path, tag: str, sources: Sources, pin: str | None, progress: Progress | None) -> ModelEntry:
    if sources.store is not None:
        return models.from_store(out, tag, sources.store, progress, pin)
    return models.from_registry(out, tag, sources.registry or DEFAULT_REGISTRY, progress, pin)


def _images(loaded: list[profiles.Profile], sources: Sources) -> list[str]:
    """The pinned images of the `runtime: docker` profiles (each once)."""
    refs = []
    for profile in loaded:
        if profile.ollama.runtime != "docker":
            continue
        ref = sources.ollama_image or profile.ollama.image
        if ref is None:
            raise UserInputError(f"profile {profile.name}: ollama.runtime docker needs ollama.image, "
                                 "the image pinned by digest (name@sha256:<hex>)")
        refs.append(ref)
    return sorted(set(refs))


def _fetch_image(out: Path, ref: str, sources: Sources, progress: Progress | None) -> ImageEntry:
    """Plain HTTP only from the lab's registry or the --registry given (the digests are pinned either way)."""
    plain_registry = oci.base_url(sources.registry) if sources.registry else ""
    plain = sources.trusted_http or plain_registry == f"http://{image.parse_reference(ref).host}"
    return image.fetch(out, ref, plain, progress)


def _apt(out: Path, debs: Path | None, kinds: dict[str, FileKind]) -> AptRepo | None:
    if debs is None:
        return None
    packages, indexes = aptrepo.build(out, debs)
    kinds.update({p.path: "apt-package" for p in packages})
    kinds.update({path: "apt-index" for path in indexes})
    return AptRepo(path=aptrepo.APT_DIR, packages=packages)


def _prune(out: Path, keep: set[str]) -> None:
    """Remove files an earlier build left that this one does not list (only in the bundle's own trees)."""
    for top in _OURS[:-1]:
        for path in sorted((out / top).rglob("*"), reverse=True) if (out / top).is_dir() else []:
            relative = path.relative_to(out).as_posix()
            if path.is_file() and relative not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
        if (out / top).is_dir() and not any((out / top).iterdir()):
            (out / top).rmdir()


def _describe(out: Path, path: str, kind: FileKind, sha256: str | None) -> BundleFile:
    return BundleFile(path=path, size=(out / path).stat().st_size, sha256=sha256 or sha256_file(out / path),
                      kind=kind)


