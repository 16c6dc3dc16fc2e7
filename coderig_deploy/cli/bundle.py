"""`coderig-deploy bundle build|verify|push`: offline bundles for air-gapped sites."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from coderig_deploy.bundle import build as building
from coderig_deploy.bundle import push as pushing
from coderig_deploy.bundle.verify import VerifyResult, verify_bundle
from coderig_deploy.cli import app
from coderig_deploy.cli.options import ModelDigestOpt, ProfilesDirOpt
from coderig_deploy.cli.output import emit, err_console, text
from coderig_deploy.errors import UserInputError

bundle_app = typer.Typer(help="Build, verify and push offline bundles (air-gapped sites).", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON")]
DirArg = Annotated[Path, typer.Argument(help="The bundle directory (holds bundle.json)")]


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class ByteProgress:
    """Prints bytes done per file to stderr: every 2 s while it runs, and once when complete."""

    def __init__(self, console: Console = err_console, every: float = 2.0) -> None:
        self.console, self.every = console, every
        self.last: dict[str, float] = {}

    def __call__(self, name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self.last.get(name, 0.0) < self.every:
            return
        self.last[name] = now
        of = f" / {_size(total)}" if total is not None else ""
        shown = name if len(name) <= 32 else name[:19] + "..."
        self.console.print(text(f"  {shown}  {_size(done)}{of}{'  done' if finished else ''}"), style="dim")


@bundle_app.command("build")
def build_cmd(
    profile: Annotated[list[str], typer.Option("--profile", help="Profile name or YAML path (repeatable)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Bundle directory to write")],
    from_store: Annotated[Path | None, typer.Option("--from-store", help="Local Ollama model store")] = None,
    registry: Annotated[str | None, typer.Option("--registry", help="HOST:PORT of an OCI registry")] = None,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Take artifacts from your sandbox lab")] = False,
    debs: Annotated[Path | None, typer.Option("--debs", help="Directory of driver .deb files")] = None,
    sign_key: Annotated[Path | None, typer.Option("--sign", help="SSH private key to sign bundle.json")] = None,
    ollama_url: Annotated[str | None, typer.Option("--ollama-url", help="URL of the Ollama archive")] = None,
    ollama_sha256: Annotated[str | None, typer.Option("--ollama-sha256", help="Pin: sha256:<hex>")] = None,
    model_digest: ModelDigestOpt = None,
    profiles_dir: ProfilesDirOpt = None,
    json_out: JsonOpt = False,
) -> int:
    """Build a bundle: Ollama archive, models (manifest + blobs), driver apt repo, profiles, bundle.json."""
    if sum(x is not None for x in (from_store, registry, True if sandbox else None)) > 1:
        raise UserInputError("give at most one of --from-store, --registry, --sandbox")
    if sandbox:
        sources = building.sandbox_sources()
    elif from_store is not None:
        sources = building.Sources(store=from_store)
    else:
        sources = building.Sources(registry=registry)
    request = building.BuildRequest(profiles=profile, output=output, sources=sources, profiles_dir=profiles_dir,
                                    debs=debs, sign_key=sign_key, ollama_url=ollama_url, ollama_sha256=ollama_sha256,
                                    model_digest=model_digest)
    manifest = building.build(request, ByteProgress())

    def render(console: Console) -> None:
        total = sum(f.size for f in manifest.files)
        console.print(text(f"bundle {output}: {len(manifest.files)} files, {_size(total)}"
                           f"{', signed' if sign_key else ''}"))
        for model in manifest.models:
            console.print(text(f"  {model.name}  {model.manifest_digest}"))

    emit(manifest.model_dump(mode="json"), json_out, render)
    return 0


def _render_verify(result: VerifyResult) -> Callable[[Console], None]:
    def render(console: Console) -> None:
        verdict = "OK" if result.ok else "FAILED"
        signed = f", signed by {result.signed_by}" if result.signed_by else \
            ("" if result.signature_checked else ", signature not checked (no --allowed-signers)")
        console.print(text(f"bundle {result.directory}: {verdict}: {result.files} files, "
                           f"{_size(result.bytes)}{signed}"))
        for p in result.problems:  # one line each, the path first and whole, so it can be grepped
            line = text(f"  {p.path}: ")
            line.append(p.problem, style="bold red")
            console.print(line + text(f" ({p.detail})" if p.detail else ""))
    return render


@bundle_app.command("verify")
def verify_cmd(
    directory: DirArg,
    allowed_signers: Annotated[Path | None, typer.Option("--allowed-signers",
                                                         help="OpenSSH allowed_signers file")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Compare sizes only, do not hash")] = False,
    json_out: JsonOpt = False,
) -> int:
    """Check every file of a bundle against bundle.json (and its signature); exit 1 naming what differs."""
    result = verify_bundle(directory, allowed_signers, full=not quick)
    emit({**result.model_dump(mode="json"), "ok": result.ok}, json_out, _render_verify(result))
    return 0 if result.ok else 1


@bundle_app.command("push")
def push_cmd(
    directory: DirArg,
    registry: Annotated[str, typer.Option("--registry", help="HOST:PORT of the site's OCI registry")],
    json_out: JsonOpt = False,
) -> int:
    """Upload the bundle's models (and container images) to an OCI registry; print the digests to pin."""
    pushed = pushing.push(directory, registry, ByteProgress())
    images = pushing.push_images(directory, registry, ByteProgress(), full=False)  # hashed just now

    def render(console: Console) -> None:
        for model in pushed:
            console.print(text(f"{model.reference}  {model.manifest_digest}  "
                               f"({model.blobs_uploaded} blobs uploaded, {model.blobs_present} present)"))
        console.print(text("pin each digest as model.manifest_digest in the profile"), style="dim")
        for image in images:
            console.print(text(f"{image.reference}  ({image.blobs_uploaded} blobs uploaded, "
                               f"{image.blobs_present} present)"))
        if images:
            console.print(text("pin the image as ollama.image in a runtime docker profile"), style="dim")

    emit([m.model_dump(mode="json") for m in [*pushed, *images]], json_out, render)
    return 0
