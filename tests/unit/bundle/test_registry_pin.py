"""A model pulled from a plain-HTTP registry needs a pin, as `render` asks: its manifest digest
is what bundle.json records and the signature vouches for. The registry is a plain file
server laid out as the OCI API's paths."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from coderig_deploy.bundle import verify_bundle
from coderig_deploy.bundle.build import BuildRequest, Sources, build
from coderig_deploy.bundle.models import ModelSourceError
from coderig_deploy.errors import UserInputError
from coderig_deploy.sandbox.ollama_sim.names import parse
from tests.unit.bundle.conftest import TAG, RangeServer, Release


@pytest.fixture
def served(range_server: RangeServer, model_store: Path) -> str:
    """TAG served at /v2/<repository>/manifests|blobs/...; returns the manifest's digest."""
    name = parse(TAG)
    manifest = model_store / "manifests" / name.host / name.namespace / name.model / name.tag
    root = range_server.root / "v2" / name.repository()
    (root / "manifests").mkdir(parents=True)
    shutil.copyfile(manifest, root / "manifests" / name.tag)
    (root / "blobs").mkdir()
    for blob in (model_store / "blobs").iterdir():
        shutil.copyfile(blob, root / "blobs" / blob.name.replace("sha256-", "sha256:"))
    return "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest()


def _request(out: Path, server: RangeServer, release: Release, digest: str | None) -> BuildRequest:
    return BuildRequest(profiles=["budget-4070"], output=out, ollama_url=release.url,
                        ollama_sha256=f"sha256:{release.sha256}", model_digest=digest,
                        sources=Sources(registry=server.url.removeprefix("http://")))


def test_a_plain_http_registry_without_a_pin_is_refused_before_any_download(
        tmp_path: Path, range_server: RangeServer, release: Release, served: str) -> None:
    with pytest.raises(UserInputError, match=f"plain-HTTP model manifest of {TAG} has no pin, give --model-digest"):
        build(_request(tmp_path / "b", range_server, release, None))
    assert range_server.requests == [] and not (tmp_path / "b").exists()


def test_a_pinned_plain_http_registry_builds_and_verifies(tmp_path: Path, range_server: RangeServer,
                                                        release: Release, served: str) -> None:
    manifest = build(_request(tmp_path / "b", range_server, release, served))
    assert manifest.models[0].manifest_digest == served and verify_bundle(tmp_path / "b").ok


def test_a_manifest_that_is_not_the_pinned_one_fetches_no_blob(tmp_path: Path, range_server: RangeServer,
                                                                release: Release, served: str) -> None:
    with pytest.raises(ModelSourceError, match=f"manifest digest {served}, but the pin is sha256:{'a' * 64}"):
        build(_request(tmp_path / "b", range_server, release, "sha256:" + "a" * 64))
    assert not [path for path, _ in range_server.requests if "/blobs/" in path]
    assert not (tmp_path / "b" / "bundle.json").exists()


def test_model_digest_pins_one_model_only(tmp_path: Path, range_server: RangeServer, release: Release) -> None:
    with pytest.raises(UserInputError, match="--model-digest pins one model, but the profiles serve"):
        build(BuildRequest(profiles=["budget-4070", "midrange-4090"], output=tmp_path / "b",
                           sources=Sources(registry="127.0.0.1:9"), model_digest="sha256:" + "a" * 64))
