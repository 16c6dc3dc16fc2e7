"""apply --bundle on the controller: the bundle is verified before anything runs, and the
project it renders copies exactly the profile's archive, blobs and manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coderig_deploy.bundle import BundleInvalid, load_manifest
from coderig_deploy.bundle.apply_options import with_bundle
from coderig_deploy.bundle.build import BuildRequest, Sources, build
from coderig_deploy.bundle.install import install_plan, store_dirs
from coderig_deploy.errors import UserInputError
from coderig_deploy.profiles import load_profile
from coderig_deploy.project import RenderOptions, TargetHost, spec_for
from coderig_deploy.render import render_project, write_project
from tests.unit.bundle.conftest import TAG, VERSION, Release, allowed_signers, make_key

BIN = Path(sys.executable).parent
PROFILE = "budget-4070"
STORE_MANIFEST = "manifests/registry.ollama.ai/library/qwen2.5-coder/14b-instruct-q4_K_M"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)


@pytest.fixture
def signed(tmp_path: Path, model_store: Path, release: Release) -> tuple[Path, Path]:
    """A bundle for budget-4070 signed by `site`, and an allowed-signers file naming it."""
    key, public = make_key(tmp_path, "site")
    out = tmp_path / "bundle"
    build(BuildRequest(profiles=[PROFILE], output=out, sources=Sources(store=model_store), sign_key=key,
                       ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    return out, allowed_signers(tmp_path / "signers", "security@site", public)


def test_the_install_plan_holds_the_profiles_archive_blobs_and_manifest(signed: tuple[Path, Path]) -> None:
    bundle = signed[0]
    manifest = load_manifest(bundle)
    install = install_plan(bundle, manifest, load_profile(PROFILE))
    model = manifest.models[0]
    assert install.ollama_version == VERSION and install.archive.dest == "ollama-linux-amd64.tar.zst"
    assert install.archive.sha256 == manifest.ollama[0].sha256
    assert [b.dest for b in install.blobs] == [f"blobs/sha256-{b.digest[7:]}" for b in model.blobs]
    assert all((bundle / b.src).stat().st_size == b.size for b in install.blobs)
    assert Path(install.directory).is_absolute()
    assert install.manifest.dest == STORE_MANIFEST and install.manifest_digest == model.manifest_digest
    assert store_dirs(install) == ["blobs", "manifests", "manifests/registry.ollama.ai",
                                   "manifests/registry.ollama.ai/library",
                                   "manifests/registry.ollama.ai/library/qwen2.5-coder"]


def test_a_bundle_without_the_profiles_model_is_bad_input(signed: tuple[Path, Path]) -> None:
    with pytest.raises(UserInputError, match=r"no model .* for profile dual-4090 \(the bundle holds " + TAG):
        install_plan(signed[0], load_manifest(signed[0]), load_profile("dual-4090"))


def test_the_options_pin_the_bundles_digests_and_drop_other_sources(signed: tuple[Path, Path]) -> None:
    bundle, signers = signed
    options = with_bundle(RenderOptions(model_registry="192.0.2.1:5000",
                                        ollama_archive_url="http://192.0.2.1/o.tar.zst"),
                          bundle, signers, load_profile(PROFILE))
    manifest = load_manifest(bundle)
    assert options.model_registry is None and options.ollama_archive_url is None
    assert options.ollama_archive_checksum == f"sha256:{manifest.ollama[0].sha256}"
    assert options.model_manifest_digest == manifest.models[0].manifest_digest


def test_the_rendered_project_copies_the_pieces_before_install_and_models(signed: tuple[Path, Path]) -> None:
    options = with_bundle(RenderOptions(), signed[0], None, load_profile(PROFILE))
    files = render_project(spec_for(load_profile(PROFILE), [TargetHost(name="ws1")], options))
    tasks = yaml.safe_load(files["site.yml"])[0]["tasks"][0]["block"]
    order = [(t["ansible.builtin.import_role"]["name"], t["ansible.builtin.import_role"].get("tasks_from", "main"))
             for t in tasks]
    assert order.index(("bundle_sync", "main")) < order.index(("ollama", "main")) \
        < order.index(("bundle_sync", "models")) < order.index(("models", "main"))
    group_vars = yaml.safe_load(files["group_vars/all.yml"].replace(b"!unsafe ", b""))
    assert group_vars["bundle_sync_manifest"]["dest"] == STORE_MANIFEST
    assert group_vars["models_registry"] == "" and group_vars["models_manifest_digest"].startswith("sha256:")
    assert "roles/bundle_sync/tasks/piece.yml" in files
    assert "roles/bundle_sync/action_plugins/bundle_sync_stream.py" in files  # the streamed copy travels along
    plain = render_project(spec_for(load_profile(PROFILE), [TargetHost(name="ws1")]))
    assert not any(p.startswith("roles/bundle_sync") for p in plain) and b"bundle_sync" not in plain["site.yml"]


def test_an_altered_blob_stops_apply_before_a_run_directory_exists(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle = signed[0]
    blob = load_manifest(bundle).models[0].blobs[-1].path
    data = bytearray((bundle / blob).read_bytes())
    data[-1] ^= 0x01
    (bundle / blob).write_bytes(bytes(data))
    result = cli("apply", "--profile", PROFILE, "--bundle", str(bundle), "--runs-dir", str(tmp_path / "runs"),
                 "192.0.2.10", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"{blob}: sha256 differs" in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_an_unsigned_bundle_is_refused_when_signers_are_given(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, signers = signed
    (bundle / "bundle.json.sig").unlink()
    with pytest.raises(BundleInvalid, match="bundle.json.sig: signature"):
        with_bundle(RenderOptions(), bundle, signers, load_profile(PROFILE))
    result = cli("apply", "--profile", PROFILE, "--bundle", str(bundle), "--allowed-signers", str(signers),
                 "--runs-dir", str(tmp_path / "runs"), "192.0.2.10", cwd=tmp_path)
    assert result.returncode == 1 and "bundle.json.sig: signature" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--ollama-url", "https://example.com/o.tar.zst"], "--bundle installs the bundle's archive and model; "
                                                        "drop --ollama-url"),
    (["--model-registry", "192.0.2.1:5000", "--model-digest", "sha256:" + "1" * 64],
     "drop --model-registry, --model-digest"),
])
def test_another_source_beside_a_bundle_exits_2(signed: tuple[Path, Path], tmp_path: Path, extra: list[str],
                                                message: str) -> None:
    result = cli("apply", "--profile", PROFILE, "--bundle", str(signed[0]), *extra, "192.0.2.10", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_bad_bundle_arguments_exit_2_with_one_line(signed: tuple[Path, Path], tmp_path: Path) -> None:
    cases = [
        (["--allowed-signers", str(signed[1])], "--allowed-signers checks a bundle's signature: give --bundle DIR too"),
        (["--bundle", str(tmp_path / "nowhere")], "not a directory"),
        (["--bundle", str(signed[0]), "--allowed-signers", str(tmp_path / "none")], "no such file"),
    ]
    (tmp_path / "notabundle").mkdir()
    cases.append((["--bundle", str(tmp_path / "notabundle")], "bundle.json: missing"))
    for extra, message in cases:
        result = cli("apply", "--profile", PROFILE, *extra, "192.0.2.10", cwd=tmp_path)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_apply_json_names_nothing_secret_about_the_bundle(signed: tuple[Path, Path]) -> None:
    """The rendered vars hold paths and digests only: JSON-safe and free of Jinja."""
    options = with_bundle(RenderOptions(), signed[0], None, load_profile(PROFILE))
    text = render_project(spec_for(load_profile(PROFILE), [TargetHost(name="ws1")], options))["group_vars/all.yml"]
    assert "{{" not in text.decode().split("bundle_sync_archive:")[1]
    assert json.dumps(options.model_dump(mode="json"))


def test_the_bundle_project_passes_ansible_lint_production(signed: tuple[Path, Path], tmp_path: Path) -> None:
    options = with_bundle(RenderOptions(), signed[0], None, load_profile(PROFILE))
    project = write_project(render_project(spec_for(load_profile(PROFILE), [TargetHost(name="ws1")], options)),
                            tmp_path / "project")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--profile", "production", "."], cwd=project,
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_driver_comes_from_the_bundles_apt_repository(tmp_path: Path, model_store: Path, release: Release,
                                                           debs: Path) -> None:
    out = tmp_path / "with-debs"
    build(BuildRequest(profiles=[PROFILE], output=out, sources=Sources(store=model_store), debs=debs,
                       ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    options = with_bundle(RenderOptions(), out, None, load_profile(PROFILE))
    assert options.bundle is not None
    assert sorted(p.dest for p in options.bundle.apt) == sorted(
        ["Packages", "Packages.gz", "Release", *(p.name for p in debs.glob("*.deb"))])
    files = render_project(spec_for(load_profile(PROFILE), [TargetHost(name="ws1")], options))
    group_vars = yaml.safe_load(files["group_vars/all.yml"].replace(b"!unsafe ", b""))
    assert group_vars["nvidia_driver_source"] == "local-repo"
    assert group_vars["nvidia_driver_local_repo_url"] == "file:/var/lib/coderig/bundle/apt"
    assert group_vars["nvidia_driver_local_repo_trusted"] is True
    assert "nvidia_driver_local_repo_key_url" not in group_vars
    assert group_vars["bundle_sync_apt_dir"] == "/var/lib/coderig/bundle/apt"
    tasks = yaml.safe_load(files["site.yml"])[0]["tasks"][0]["block"]
    names = [t["ansible.builtin.import_role"]["name"] for t in tasks]
    assert names.index("bundle_sync") < names.index("nvidia_driver")
