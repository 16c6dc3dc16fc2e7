"""The pinned Ollama image in a bundle (runtime docker): fetched by digest from a real
docker-registry on loopback, written as a `docker save` archive (plus OCI layout),
listed in bundle.json, and found by apply --bundle / verify --bundle."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from coderig_deploy.bundle import BundleInvalid, load_manifest
from coderig_deploy.bundle.apply_options import with_bundle
from coderig_deploy.bundle.build import BuildRequest, Sources, build
from coderig_deploy.bundle.image import archive_relpath, fetch, parse_reference, write_archive
from coderig_deploy.bundle.push import push_images
from coderig_deploy.bundle.verify import verify_bundle
from coderig_deploy.errors import RunFailed, UserInputError
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import RenderOptions, TargetHost, spec_for
from coderig_deploy.render import render_project, write_project
from coderig_deploy.sandbox import registry
from coderig_deploy.sandbox.ollama_sim.store import MANIFEST_V2
from coderig_deploy.verify.container import ContainerExpect, HostContainers, container_checks
from tests.integration.ollama_sim_support import free_port, stop_pid
from tests.unit.bundle.conftest import RangeServer, Release

REPOSITORY = "coderig/ollama-test"
LIST_TYPE = "application/vnd.docker.distribution.manifest.list.v2+json"
BIN = Path(sys.executable).parent
PROFILES = Path(__file__).resolve().parents[1] / "container" / "profiles"


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pushed:
    address: str
    config: bytes
    layer: bytes
    manifest_digest: str
    list_digest: str

    def ref(self, digest: str) -> str:
        return f"{self.address}/{REPOSITORY}@{digest}"


def _put_manifest(base: str, tag: str, data: bytes, media: str) -> str:
    with registry._call("PUT", f"{base}/v2/{REPOSITORY}/manifests/{tag}", data, {"Content-Type": media}):
        pass
    return _sha(data)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    """A small image (config + one gzip layer) and a manifest list naming it for linux/amd64."""
    process = registry.start(tmp_path_factory.mktemp("registry"), "127.0.0.1", free_port())
    base = f"http://{process.address}"
    raw = b"hello from the layer\n" * 100
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["serve"]},
                         "rootfs": {"type": "layers", "diff_ids": [_sha(raw)]}}).encode()
    for blob in (config, layer):
        registry.push_blob(base, REPOSITORY, _sha(blob), blob)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V2,
                           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                      "size": len(config), "digest": _sha(config)},
                           "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                                       "size": len(layer), "digest": _sha(layer)}]}).encode()
    digest = _put_manifest(base, "single", manifest, MANIFEST_V2)
    listing = json.dumps({"schemaVersion": 2, "mediaType": LIST_TYPE, "manifests": [
        {"mediaType": MANIFEST_V2, "size": len(manifest), "digest": digest,
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    list_digest = _put_manifest(base, "list", listing, LIST_TYPE)
    yield Pushed(process.address, config, layer, digest, list_digest)
    stop_pid(process.pid)


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_the_archive_is_docker_save_and_oci_layout_with_every_blob(pushed: Pushed, tmp_path: Path) -> None:
    entry = fetch(tmp_path, pushed.ref(pushed.manifest_digest), plain_http=True)
    assert entry.path == archive_relpath(pushed.manifest_digest)
    assert entry.image_id == _sha(pushed.config) and entry.platform_manifest_digest is None
    files = _members(tmp_path / entry.path)
    docker = json.loads(files["manifest.json"])
    assert docker == [{"Config": f"blobs/sha256/{_sha(pushed.config)[7:]}",
                       "RepoTags": [f"{pushed.address}/{REPOSITORY}:pinned-{pushed.manifest_digest[7:19]}"],
                       "Layers": [f"blobs/sha256/{_sha(pushed.layer)[7:]}"]}]
    assert files[docker[0]["Config"]] == pushed.config and files[docker[0]["Layers"][0]] == pushed.layer
    index = json.loads(files["index.json"])
    assert index["manifests"][0]["digest"] == pushed.manifest_digest
    assert _sha(files[f"blobs/sha256/{pushed.manifest_digest[7:]}"]) == pushed.manifest_digest
    assert not (tmp_path / ".partial" / "image-blobs").exists()


def test_the_archive_is_the_same_bytes_every_time(pushed: Pushed, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = fetch(tmp_path / "a", pushed.ref(pushed.manifest_digest), plain_http=True)
    second = fetch(tmp_path / "b", pushed.ref(pushed.manifest_digest), plain_http=True)
    assert (tmp_path / "a" / first.path).read_bytes() == (tmp_path / "b" / second.path).read_bytes()


def test_a_pinned_list_is_followed_to_its_linux_amd64_manifest(pushed: Pushed, tmp_path: Path) -> None:
    entry = fetch(tmp_path, pushed.ref(pushed.list_digest), plain_http=True)
    assert entry.manifest_digest == pushed.list_digest
    assert entry.platform_manifest_digest == pushed.manifest_digest and entry.image_id == _sha(pushed.config)


def test_a_pin_the_registry_does_not_hold_is_refused(pushed: Pushed, tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match="HTTP 404"):
        fetch(tmp_path, pushed.ref("sha256:" + "1" * 64), plain_http=True)
    assert not (tmp_path / "images").exists()


@pytest.mark.parametrize("bad", ["ollama/ollama:latest", "docker.io/ollama/ollama@sha256:abc",
                                 "ollama@sha256:" + "0" * 64])
def test_an_unpinned_or_malformed_reference_is_bad_input(bad: str) -> None:
    with pytest.raises(UserInputError, match="pinned by digest"):
        parse_reference(bad)


def test_docker_hub_is_reached_over_its_api_host() -> None:
    assert parse_reference("docker.io/ollama/ollama@sha256:" + "0" * 64).base(False) == \
        "https://registry-1.docker.io"


@pytest.fixture
def bundle(pushed: Pushed, tmp_path: Path, model_store: Path, release: Release) -> Path:
    out = tmp_path / "bundle"
    build(BuildRequest(profiles=["budget-4070-docker"], output=out, profiles_dir=PROFILES,
                       sources=Sources(store=model_store, registry=pushed.address,
                                       ollama_image=pushed.ref(pushed.manifest_digest)),
                       ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    return out


def test_build_lists_the_image_and_a_tampered_archive_fails_verify(pushed: Pushed, bundle: Path) -> None:
    manifest = load_manifest(bundle)
    [image] = manifest.images
    listed = manifest.file(image.path)
    assert listed.kind == "container-image" and listed.sha256 == hashlib.sha256(
        (bundle / image.path).read_bytes()).hexdigest()
    assert verify_bundle(bundle, None, full=True).ok
    data = bytearray((bundle / image.path).read_bytes())
    data[-2000] ^= 0xFF
    (bundle / image.path).write_bytes(bytes(data))
    result = verify_bundle(bundle, None, full=True)
    assert not result.ok and [p.path for p in result.problems] == [image.path]


def test_apply_options_run_the_bundles_image_by_its_id(pushed: Pushed, bundle: Path) -> None:
    profile = load_profile("budget-4070-docker", PROFILES)
    ref = pushed.ref(pushed.manifest_digest)
    options = with_bundle(RenderOptions(ollama_image=ref), bundle, None, profile)
    assert options.ollama_image == ref and options.bundle is not None
    assert options.bundle.image_id == _sha(pushed.config)
    assert options.bundle.image is not None and options.bundle.image.dest == f"sha256-{pushed.manifest_digest[7:]}.tar"
    with pytest.raises(UserInputError, match="no image docker.io/ollama/ollama@sha256:0000"):
        with_bundle(RenderOptions(), bundle, None, profile)  # the profile's own pin is not in it


def test_verify_accepts_the_loaded_image_id_and_nothing_else(pushed: Pushed) -> None:
    ref = pushed.ref(pushed.manifest_digest)
    attrs = {"Image": _sha(pushed.config), "Config": {"Image": _sha(pushed.config)}}

    def digest_check(expect: ContainerExpect, seen: dict[str, object]) -> str:
        checks = container_checks(HostContainers(seen, {"RepoDigests": []}), expect)
        return next(c.status for c in checks if c.name == "container_image_digest")

    loaded = ContainerExpect(image=ref, env={}, publish="127.0.0.1:11434", image_id=_sha(pushed.config))
    assert digest_check(loaded, attrs) == "pass"
    assert digest_check(loaded, {**attrs, "Image": _sha(b"other")}) == "fail"
    assert digest_check(ContainerExpect(image=ref, env={}, publish="127.0.0.1:11434"), attrs) == "fail"


def test_layer_contents_match_the_config_diff_ids(pushed: Pushed, tmp_path: Path) -> None:
    """What dockerd checks on load: the gunzipped layer's sha256 is the config's diff_id."""
    entry = fetch(tmp_path, pushed.ref(pushed.manifest_digest), plain_http=True)
    files = _members(tmp_path / entry.path)
    config = json.loads(files[f"blobs/sha256/{entry.image_id[7:]}"])
    layer = files[json.loads(files["manifest.json"])[0]["Layers"][0]]
    assert config["rootfs"]["diff_ids"] == [_sha(gzip.decompress(layer))]
    assert io.BytesIO(layer).read(2) == b"\x1f\x8b"  # kept gzip: docker load decompresses it


def test_push_serves_the_image_at_the_site_by_the_same_digest(pushed: Pushed, bundle: Path, tmp_path: Path) -> None:
    site = registry.start(tmp_path / "site", "127.0.0.1", free_port())
    try:
        [image] = push_images(bundle, site.address)
        assert image.reference == f"{site.address}/{REPOSITORY}@{pushed.manifest_digest}"
        assert (image.blobs_uploaded, image.blobs_present) == (2, 0)
        again = fetch(tmp_path, image.reference, plain_http=True)  # what a host pulls: the same pin
        assert again.image_id == _sha(pushed.config)
        original = load_manifest(bundle).images[0]
        blobs = {n: d for n, d in _members(tmp_path / again.path).items() if n.startswith("blobs/")}
        assert blobs == {n: d for n, d in _members(bundle / original.path).items() if n.startswith("blobs/")}
        assert push_images(bundle, site.address)[0].blobs_present == 2  # a second push uploads nothing
    finally:
        stop_pid(site.pid)


def test_the_docker_bundle_project_loads_the_image_and_passes_ansible_lint(pushed: Pushed, bundle: Path,
                                                                           tmp_path: Path) -> None:
    profile = load_profile("budget-4070-docker", PROFILES)
    options = with_bundle(RenderOptions(ollama_image=pushed.ref(pushed.manifest_digest)), bundle, None, profile)
    files = render_project(spec_for(profile, [TargetHost(name="ws1")], options))
    group_vars = yaml.safe_load(files["group_vars/all.yml"].replace(b"!unsafe ", b""))
    dest = f"sha256-{pushed.manifest_digest[7:]}.tar"
    assert group_vars["container_runtime_ollama_image_id"] == _sha(pushed.config)
    assert group_vars["container_runtime_ollama_image_archive"] == f"/var/lib/coderig/bundle/images/{dest}"
    assert group_vars["bundle_sync_image"]["dest"] == dest
    assert group_vars["bundle_sync_image_dir"] == "/var/lib/coderig/bundle/images"
    assert group_vars["bundle_sync_archive"] == {}  # the release archive is not copied to a docker host
    project = write_project(files, tmp_path / "project")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--profile", "production", "."], cwd=project,
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _serve(server: RangeServer, path: str, data: bytes) -> None:
    target = server.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def test_a_registry_serving_other_bytes_for_the_pin_is_refused(pushed: Pushed, range_server: RangeServer,
                                                              tmp_path: Path) -> None:
    """A registry that lies (not content-addressed): a manifest or a blob that does not hash to its digest."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V2,
                           "config": {"size": len(pushed.config), "digest": _sha(pushed.config)},
                           "layers": [{"size": len(pushed.layer), "digest": _sha(pushed.layer)}]}).encode()
    host = range_server.url.removeprefix("http://")
    pin = _sha(manifest)
    _serve(range_server, f"v2/{REPOSITORY}/manifests/{pin}", manifest + b" ")
    with pytest.raises(RunFailed, match="not the pin"):
        fetch(tmp_path, f"{host}/{REPOSITORY}@{pin}", plain_http=True)
    _serve(range_server, f"v2/{REPOSITORY}/manifests/{pin}", manifest)
    _serve(range_server, f"v2/{REPOSITORY}/blobs/{_sha(pushed.config)}", pushed.config)
    flipped = pushed.layer[:-1] + bytes([pushed.layer[-1] ^ 0xFF])
    _serve(range_server, f"v2/{REPOSITORY}/blobs/{_sha(pushed.layer)}", flipped)
    with pytest.raises(RunFailed, match="sha256"):
        fetch(tmp_path, f"{host}/{REPOSITORY}@{pin}", plain_http=True)
    assert not (tmp_path / archive_relpath(pin)).exists()


def _edit_bundle_json(bundle: Path, change: dict[str, object], archive: bytes | None = None) -> None:
    """An unsigned bundle.json edited to agree with itself (verify's file hashes still pass)."""
    path = bundle / "bundle.json"
    data = json.loads(path.read_text())
    data["images"][0].update(change)
    if archive is not None:
        (bundle / data["images"][0]["path"]).write_bytes(archive)
        for entry in data["files"]:
            if entry["path"] == data["images"][0]["path"]:
                entry["size"], entry["sha256"] = len(archive), hashlib.sha256(archive).hexdigest()
    path.write_text(json.dumps(data))


def test_apply_ties_the_archive_to_the_users_pin_not_to_bundle_json(pushed: Pushed, bundle: Path,
                                                                    tmp_path: Path) -> None:
    profile = load_profile("budget-4070-docker", PROFILES)
    options = RenderOptions(ollama_image=pushed.ref(pushed.manifest_digest))
    _edit_bundle_json(bundle, {"image_id": _sha(b"another config")})
    with pytest.raises(BundleInvalid, match="names config " + _sha(pushed.config)):
        with_bundle(options, bundle, None, profile)
    other = tmp_path / "other"
    other.mkdir()
    (other / _sha(pushed.config)[7:]).write_bytes(pushed.config)
    write_archive(other / "x.tar", json.dumps({"config": {"digest": _sha(pushed.config), "size": 1},
                                               "layers": []}).encode(), other, "x/y:z")
    _edit_bundle_json(bundle, {"image_id": _sha(pushed.config)}, (other / "x.tar").read_bytes())
    with pytest.raises(BundleInvalid, match="not the pinned image's archive"):
        with_bundle(options, bundle, None, profile)


def test_a_list_pinned_image_is_tied_through_the_list_in_the_archive(pushed: Pushed, tmp_path: Path,
                                                                     model_store: Path, release: Release) -> None:
    ref = pushed.ref(pushed.list_digest)
    out = tmp_path / "bundle"
    build(BuildRequest(profiles=["budget-4070-docker"], output=out, profiles_dir=PROFILES,
                       sources=Sources(store=model_store, registry=pushed.address, ollama_image=ref),
                       ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    options = with_bundle(RenderOptions(ollama_image=ref), out, None, load_profile("budget-4070-docker", PROFILES))
    assert options.bundle is not None and options.bundle.image_id == _sha(pushed.config)
    assert f"blobs/sha256/{pushed.list_digest[7:]}" in _members(out / load_manifest(out).images[0].path)


@pytest.mark.parametrize("case", ["missing", "without-the-image"])
def test_verify_with_a_bad_bundle_is_one_line_of_bad_input_before_any_host(case: str, tmp_path: Path,
                                                                           model_store: Path,
                                                                           release: Release) -> None:
    bundle = tmp_path / "bundle"
    if case == "without-the-image":
        build(BuildRequest(profiles=["budget-4070"], output=bundle, sources=Sources(store=model_store),
                           ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "verify", "--profile", "budget-4070-docker",
                           "--profiles-dir", str(PROFILES), "--bundle", str(bundle), "192.0.2.1"],
                          capture_output=True, text=True, timeout=120, check=False)
    expected = "bundle: not a directory" if case == "missing" else "no image docker.io/ollama/ollama@sha256:0000"
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
