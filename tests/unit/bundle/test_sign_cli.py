"""Signing round trip with ssh-keygen, and the CLI's exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coderig_deploy.bundle.build import BuildRequest, Sources, build
from coderig_deploy.bundle.verify import BundleInvalid, load_verified, verify_bundle
from tests.unit.bundle.conftest import VERSION, RangeServer, Release, allowed_signers, make_key


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The environment as os.environ holds it: pytest's readline exports COLUMNS=80 to children behind
    # Python's back, and piped output honours COLUMNS (a digest line would wrap).
    return subprocess.run([sys.executable, "-m", "coderig_deploy", *args], capture_output=True, text=True,
                          timeout=120, check=False, env=dict(os.environ))


@pytest.fixture
def signed(tmp_path: Path, model_store: Path, release: Release) -> tuple[Path, Path]:
    """A bundle signed by `site`, and an allowed-signers file naming it."""
    key, public = make_key(tmp_path, "site")
    out = tmp_path / "bundle"
    build(BuildRequest(profiles=["budget-4070"], output=out, sources=Sources(store=model_store), sign_key=key,
                       ollama_url=release.url, ollama_sha256=f"sha256:{release.sha256}"))
    return out, allowed_signers(tmp_path / "signers", "security@site", public)


def test_a_signed_bundle_verifies_with_its_signer(signed: tuple[Path, Path]) -> None:
    bundle, signers = signed
    assert (bundle / "bundle.json.sig").read_text().startswith("-----BEGIN SSH SIGNATURE-----")
    result = verify_bundle(bundle, signers)
    assert result.ok and result.signed_by == "security@site"


def test_an_edited_bundle_json_fails_the_signature(signed: tuple[Path, Path]) -> None:
    bundle, signers = signed
    data = json.loads((bundle / "bundle.json").read_text())
    data["coderig_version"] = "9.9.9"
    (bundle / "bundle.json").write_text(json.dumps(data))
    problems = verify_bundle(bundle, signers).problems
    assert [(p.path, p.problem) for p in problems] == [("bundle.json.sig", "signature")]
    assert "does not match bundle.json" in problems[0].detail


def test_a_key_not_in_the_signers_file_is_refused(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, _ = signed
    _, other = make_key(tmp_path, "stranger")
    problems = verify_bundle(bundle, allowed_signers(tmp_path / "other", "x@y", other)).problems
    assert problems[0].problem == "signature" and "not made by a key in" in problems[0].detail


def test_a_bundle_that_does_not_verify_says_why(signed: tuple[Path, Path], tmp_path: Path) -> None:
    """What `validate --airgapped` and `apply --bundle` print: the reason, not only the kind of problem."""
    bundle, _ = signed
    _, other = make_key(tmp_path, "stranger")
    signers = allowed_signers(tmp_path / "other", "x@y", other)
    with pytest.raises(BundleInvalid) as raised:
        load_verified(bundle, signers)
    assert str(raised.value) == f"bundle {bundle} does not verify: bundle.json.sig: signature " \
                                f"(not made by a key in {signers})"


def test_a_missing_signature_is_a_problem_when_signers_are_given(signed: tuple[Path, Path]) -> None:
    bundle, signers = signed
    (bundle / "bundle.json.sig").unlink()
    problems = verify_bundle(bundle, signers).problems
    assert problems[0].path == "bundle.json.sig" and "missing" in problems[0].detail


def test_cli_verify_names_the_altered_file_and_exits_1(signed: tuple[Path, Path]) -> None:
    bundle, signers = signed
    (bundle / "profiles" / "budget-4070.yaml").write_text("name: evil\n")
    result = cli("bundle", "verify", str(bundle), "--allowed-signers", str(signers), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["signed_by"] == "security@site"
    assert [(p["path"], p["problem"]) for p in report["problems"]] == [("profiles/budget-4070.yaml", "size differs")]
    table = cli("bundle", "verify", str(bundle))
    assert table.returncode == 1 and "profiles/budget-4070.yaml" in table.stdout and "FAILED" in table.stdout


def test_cli_verify_of_a_good_bundle_exits_0(signed: tuple[Path, Path]) -> None:
    bundle, signers = signed
    result = cli("bundle", "verify", str(bundle), "--allowed-signers", str(signers))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "signed by security@site" in result.stdout


@pytest.mark.parametrize("content, message", [
    ("{not json", "bundle.json: not valid JSON"),
    ('{"schema_version": 1}', "bundle.json: coderig_version: Field required (and "),
    ("[]", "bundle.json: (top level): Input should be a valid dictionary"),
    ("[" * 200_000, "bundle.json: not a bundle manifest: nested too deeply"),
])
def test_cli_a_malformed_bundle_json_exits_2_with_one_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bundle.json").write_text(content)
    result = cli("bundle", "verify", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr.replace("\n", "")
    assert result.stderr.startswith("error: ") and result.stderr.count("error:") == 1
    assert "Traceback" not in result.stderr


def test_cli_a_path_escaping_the_bundle_is_a_format_error(signed: tuple[Path, Path]) -> None:
    bundle, _ = signed
    data = json.loads((bundle / "bundle.json").read_text())
    data["files"][0]["path"] = "../../etc/shadow"
    (bundle / "bundle.json").write_text(json.dumps(data))
    result = cli("bundle", "verify", str(bundle))
    assert result.returncode == 2
    assert "'../../etc/shadow' is not a plain relative path" in result.stderr.replace("\n", "")


@pytest.mark.parametrize("args, message", [
    (["--ollama-sha256", "md5:abc"], "--ollama-sha256 'md5:abc': expected sha256:<64 hex digits>"),
    ([], "plain HTTP without a pin"),
    (["--registry", "a:1", "--sandbox"], "give at most one of --from-store, --registry, --sandbox"),
    (["--debs", "/nonexistent"], "--debs /nonexistent: no such directory"),
    (["--sign", "/nonexistent"], None),
])
def test_cli_build_input_errors_exit_2_with_one_line(tmp_path: Path, model_store: Path, release: Release,
                                                     args: list[str], message: str | None) -> None:
    pin = [] if args in ([], ["--ollama-sha256", "md5:abc"]) else ["--ollama-sha256", f"sha256:{release.sha256}"]
    result = cli("bundle", "build", "--profile", "budget-4070", "-o", str(tmp_path / "b"), "--from-store",
                 str(model_store), "--ollama-url", release.url, *pin, *args)
    assert result.returncode == 2, result.stderr
    assert (message or "--sign /nonexistent: no such key file") in result.stderr.replace("\n", "")
    assert result.stderr.startswith("error: ") and result.stderr.count("error:") == 1  # nothing fetched first
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()


def test_cli_build_prints_progress_in_bytes_and_the_digests(tmp_path: Path, model_store: Path,
                                                            release: Release) -> None:
    result = cli("bundle", "build", "--profile", "budget-4070", "-o", str(tmp_path / "b"), "--from-store",
                 str(model_store), "--ollama-url", release.url, "--ollama-sha256", f"sha256:{release.sha256}")
    assert result.returncode == 0, result.stderr
    assert "ollama-linux-amd64.tar.zst  1.0 MiB / 1.0 MiB  done" in result.stderr
    assert "qwen2.5-coder:14b-instruct-q4_K_M  sha256:" in result.stdout


def test_cli_a_killed_build_resumes_where_it_stopped(tmp_path: Path, model_store: Path, release: Release,
                                                     range_server: RangeServer) -> None:
    args = [sys.executable, "-m", "coderig_deploy", "bundle", "build", "--profile", "budget-4070", "-o",
            str(tmp_path / "b"), "--from-store", str(model_store), "--ollama-url", release.url,
            "--ollama-sha256", f"sha256:{release.sha256}"]
    range_server.stall_after = 300_000
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / "b" / ".partial" / "ollama-linux-amd64.tar.zst"
    deadline = time.monotonic() + 60
    while not (partial.is_file() and partial.stat().st_size >= 300_000) and time.monotonic() < deadline:
        time.sleep(0.05)
    first.kill()
    first.wait()
    assert partial.stat().st_size == 300_000
    assert not (tmp_path / "b" / "ollama").exists() and not (tmp_path / "b" / "bundle.json").exists()
    range_server.stall_after = None
    range_server.release.set()
    second = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr
    assert range_server.requests[-1] == (f"/v{VERSION}/ollama-linux-amd64.tar.zst", "bytes=300000-")
    assert verify_bundle(tmp_path / "b").ok


def test_cli_a_sign_file_that_is_no_private_key_is_refused_before_any_download(
        tmp_path: Path, model_store: Path, release: Release, range_server: RangeServer) -> None:
    fake = tmp_path / "fakekey"
    fake.write_text("not a key\n")
    fake.chmod(0o600)
    result = cli("bundle", "build", "--profile", "budget-4070", "-o", str(tmp_path / "b"), "--from-store",
                 str(model_store), "--ollama-url", release.url, "--ollama-sha256", f"sha256:{release.sha256}",
                 "--sign", str(fake))
    assert result.returncode == 2, result.stderr
    assert f"--sign {fake}: not a private key ssh-keygen can use" in result.stderr.replace("\n", "")
    assert result.stderr.count("\n") == 1 and range_server.requests == [] and not (tmp_path / "b").exists()


def test_cli_a_signing_that_fails_leaves_no_bundle_json(tmp_path: Path, model_store: Path, release: Release) -> None:
    """An encrypted key passes the early check; without a terminal for its passphrase, signing fails."""
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True)
    result = subprocess.run([sys.executable, "-m", "coderig_deploy", "bundle", "build", "--profile", "budget-4070",
                             "-o", str(tmp_path / "b"), "--from-store", str(model_store), "--ollama-url",
                             release.url, "--ollama-sha256", f"sha256:{release.sha256}", "--sign", str(key)],
                            capture_output=True, text=True, timeout=120, check=False, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "ssh-keygen could not sign" in result.stderr, result.stderr
    assert (tmp_path / "b" / "ollama").is_dir()  # the downloads are kept for the next run
    assert not (tmp_path / "b" / "bundle.json").exists() and not (tmp_path / "b" / "bundle.json.sig").exists()
    assert cli("bundle", "verify", str(tmp_path / "b")).returncode == 2
