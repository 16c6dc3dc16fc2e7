"""Build a bundle from a model store, a served release and dummy .debs; verify names what differs."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from coderig_deploy.bundle import BundleInvalid, load_manifest, load_verified, verify_bundle
from coderig_deploy.bundle.build import BuildRequest, Sources, build
from coderig_deploy.bundle.download import DownloadError
from coderig_deploy.bundle.models import ModelSourceError
from coderig_deploy.errors import UserInputError
from tests.unit.bundle.conftest import TAG, VERSION, RangeServer, Release


def _build(out: Path, store: Path, release: Release, debs: Path | None = None) -> None:
    build(BuildRequest(profiles=["budget-4070"], output=out, sources=Sources(store=store), debs=debs,
                       ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))


@pytest.fixture
def bundle(tmp_path: Path, model_store: Path, release: Release, debs: Path) -> Path:
    out = tmp_path / "bundle"
    _build(out, model_store, release, debs)
    return out


def test_bundle_json_lists_every_file_with_size_sha256_and_kind(bundle: Path, release: Release) -> None:
    manifest = load_manifest(bundle)
    on_disk = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert sorted([f.path for f in manifest.files] + ["bundle.json"]) == on_disk
    for entry in manifest.files:
        data = (bundle / entry.path).read_bytes()
        assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    kinds = {f.kind for f in manifest.files}
    assert kinds == {"profile", "ollama-archive", "ollama-checksums", "model-manifest", "model-blob",
                     "apt-package", "apt-index"}
    assert manifest.ollama[0].sha256 == release.sha256 and manifest.ollama[0].pinned
    assert manifest.ollama[0].path == f"ollama/v{VERSION}/ollama-linux-amd64.tar.zst"
    model = manifest.models[0]
    assert model.name == TAG
    assert model.manifest_path == "models/manifests/registry.ollama.ai/library/qwen2.5-coder/14b-instruct-q4_K_M"
    assert model.manifest_digest == "sha256:" + hashlib.sha256((bundle / model.manifest_path).read_bytes()).hexdigest()
    assert len(model.blobs) >= 2 and all((bundle / b.path).name == "sha256-" + b.digest[7:] for b in model.blobs)
    assert [p.name for p in manifest.profiles] == ["budget-4070"]
    assert json.loads((bundle / "bundle.json").read_text())["schema_version"] == 1
    assert not (bundle / ".partial").exists()


def test_the_apt_repository_indexes_every_deb(bundle: Path) -> None:
    manifest = load_manifest(bundle)
    assert manifest.apt is not None
    assert sorted(p.package for p in manifest.apt.packages) == ["nvidia-driver-dummy", "nvidia-utils-dummy"]
    packages = (bundle / "apt" / "Packages").read_text()
    assert gzip.decompress((bundle / "apt" / "Packages.gz").read_bytes()).decode() == packages
    deb = (bundle / "apt" / "nvidia-driver-dummy_550.1-1_all.deb").read_bytes()
    assert f"Filename: ./nvidia-driver-dummy_550.1-1_all.deb\nSize: {len(deb)}" in packages
    assert f"SHA256: {hashlib.sha256(deb).hexdigest()}" in packages
    release_text = (bundle / "apt" / "Release").read_text()
    data = packages.encode()
    assert f" {hashlib.sha256(data).hexdigest()} {len(data)} Packages\n" in release_text


def test_the_profile_in_the_bundle_loads_as_the_same_profile(bundle: Path) -> None:
    from coderig_deploy.profiles import load_profile

    copied, shipped = load_profile(bundle / "profiles" / "budget-4070.yaml"), load_profile("budget-4070")
    assert copied.model_dump() == shipped.model_dump()


def test_a_clean_bundle_verifies(bundle: Path) -> None:
    result = verify_bundle(bundle)
    assert result.ok and result.hashed and result.files == len(load_manifest(bundle).files)
    assert load_verified(bundle).models[0].name == TAG


def test_an_altered_blob_is_named(bundle: Path) -> None:
    blob = bundle / load_manifest(bundle).models[0].blobs[-1].path
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    problems = verify_bundle(bundle).problems
    assert [(p.path, p.problem) for p in problems] == [(blob.relative_to(bundle).as_posix(), "sha256 differs")]
    assert verify_bundle(bundle, full=False).ok  # same size: the quick check cannot see it, by design
    with pytest.raises(BundleInvalid, match="sha256-.*: sha256 differs"):
        load_verified(bundle)


def test_missing_extra_and_resized_files_are_named(bundle: Path) -> None:
    (bundle / "apt" / "Release").unlink()
    (bundle / "models" / "blobs" / "sha256-evil").write_text("x")
    with open(bundle / "profiles" / "budget-4070.yaml", "a") as handle:
        handle.write("# more\n")
    problems = {(p.path, p.problem) for p in verify_bundle(bundle, full=False).problems}
    assert problems == {("apt/Release", "missing"), ("models/blobs/sha256-evil", "extra"),
                        ("profiles/budget-4070.yaml", "size differs")}


def test_a_rebuild_reuses_the_directory_and_drops_what_is_no_longer_listed(bundle: Path, model_store: Path,
                                                                           release: Release) -> None:
    _build(bundle, model_store, release, debs=None)
    assert not (bundle / "apt").exists()
    assert verify_bundle(bundle).ok


def test_a_pin_that_differs_from_the_release_list_stops_the_build(tmp_path: Path, model_store: Path,
                                                                  release: Release) -> None:
    with pytest.raises(DownloadError, match="but the pin is sha256:" + "a" * 64):
        build(BuildRequest(profiles=["budget-4070"], output=tmp_path / "b", sources=Sources(store=model_store),
                           ollama_url=release.url, ollama_sha256="sha256:" + "a" * 64))
    assert not (tmp_path / "b" / "bundle.json").exists()
    assert not list((tmp_path / "b").rglob("ollama-linux-amd64.tar.zst"))


def test_a_tampered_archive_is_refused_before_it_gets_its_name(tmp_path: Path, model_store: Path,
                                                              release: Release) -> None:
    release.archive.write_bytes(release.archive.read_bytes()[:-1] + b"!")
    with pytest.raises(DownloadError, match="does not match the expected"):
        _build(tmp_path / "b", model_store, release)
    assert not list((tmp_path / "b").rglob("ollama-linux-amd64.tar.zst"))


def test_plain_http_without_a_pin_is_refused(tmp_path: Path, model_store: Path, release: Release) -> None:
    with pytest.raises(UserInputError, match="plain HTTP without a pin"):
        build(BuildRequest(profiles=["budget-4070"], output=tmp_path / "b", sources=Sources(store=model_store),
                           ollama_url=release.url))


def test_a_directory_of_other_things_is_not_overwritten(tmp_path: Path, model_store: Path,
                                                        release: Release) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(UserInputError, match="not empty and not a bundle"):
        _build(tmp_path / "home", model_store, release)


def test_a_link_in_place_of_a_file_is_named_even_with_the_right_content(bundle: Path, tmp_path: Path) -> None:
    profile = bundle / "profiles" / "budget-4070.yaml"
    outside = tmp_path / "elsewhere.yaml"
    outside.write_bytes(profile.read_bytes())
    profile.unlink()
    profile.symlink_to(outside)
    problems = [(p.path, p.problem) for p in verify_bundle(bundle).problems]
    assert problems == [("profiles/budget-4070.yaml", "not a regular file")]


def test_two_profiles_with_one_name_are_refused(tmp_path: Path, model_store: Path, release: Release) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "budget-4070.yaml").write_text("extends: budget-4070\ndescription: the same name again\n")
    with pytest.raises(UserInputError, match="two profiles are named 'budget-4070'"):
        build(BuildRequest(profiles=["budget-4070", str(other / "budget-4070.yaml")], output=tmp_path / "b",
                           sources=Sources(store=model_store), ollama_url=release.url,
                           ollama_sha256=f"sha256:{release.sha256}"))


def test_one_pin_for_two_ollama_versions_is_refused(tmp_path: Path, model_store: Path) -> None:
    (tmp_path / "newer.yaml").write_text("extends: budget-4070\nollama: {version: 0.34.0}\n")
    with pytest.raises(UserInputError, match="--ollama-sha256 names one archive, but the profiles use "
                                             f"Ollama {VERSION}, 0.34.0"):
        build(BuildRequest(profiles=["budget-4070", str(tmp_path / "newer.yaml")], output=tmp_path / "b",
                           sources=Sources(store=model_store), ollama_sha256="sha256:" + "a" * 64))


def test_a_model_the_store_lacks_is_refused_before_any_download(tmp_path: Path, model_store: Path,
                                                                release: Release, range_server: RangeServer) -> None:
    with pytest.raises(UserInputError, match=f"--from-store {model_store}: no manifest for qwen2.5-coder:32b"):
        build(BuildRequest(profiles=["midrange-4090"], output=tmp_path / "b", sources=Sources(store=model_store),
                           ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    assert range_server.requests == [] and not (tmp_path / "b").exists()


def test_a_file_that_is_no_deb_is_refused_in_plain_words_before_any_download(
        tmp_path: Path, model_store: Path, release: Release, range_server: RangeServer) -> None:
    (tmp_path / "debs").mkdir()
    (tmp_path / "debs" / "x.deb").write_text("junk")
    with pytest.raises(UserInputError, match=r"x\.deb: not a Debian package \(dpkg-deb: error") as raised:
        _build(tmp_path / "b", model_store, release, tmp_path / "debs")
    assert "[" not in str(raised.value) and "'" not in str(raised.value)
    assert range_server.requests == [] and not (tmp_path / "b").exists()


def test_a_store_blob_of_another_size_than_its_manifest_says_is_named_before_any_download(
        tmp_path: Path, model_store: Path, release: Release, range_server: RangeServer) -> None:
    store = tmp_path / "store"
    shutil.copytree(model_store, store)
    manifest = next(p for p in (store / "manifests").rglob("*") if p.is_file())
    data = json.loads(manifest.read_bytes())
    layer = data["layers"][0]
    layer["size"] += 1
    manifest.write_text(json.dumps(data))
    blob = f"sha256-{layer['digest'].removeprefix('sha256:')}"
    with pytest.raises(ModelSourceError, match=f"{blob}: blob of {TAG} is {layer['size'] - 1} bytes, "
                                               f"but its manifest says {layer['size']}"):
        _build(tmp_path / "b", store, release)
    assert range_server.requests == [] and not (tmp_path / "b").exists()
