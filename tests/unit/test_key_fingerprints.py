"""The host-side key fingerprint helper: the nvidia_driver role trusts a key only if it matches the pin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from coderig_deploy.resources import shipped_dir

HELPER = shipped_dir("playbooks") / "roles" / "nvidia_driver" / "files" / "coderig-key-fingerprints.py"
KEYS = Path(__file__).parent / "fixtures" / "keys"
RSA = ["pub 48220EFF535118438BD0CBA7E1B2E37557E2FF3F", "sub 7013D71A2170A88B703E6EF35A28B7D5832DB254"]
ED25519 = ["pub 84D27424F187A0D4EEBA1A6150084D1D4CF58D69"]


def fingerprints(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the helper as the role does: `python3 - FILE` with the script on stdin."""
    return subprocess.run([sys.executable, "-", *args], input=HELPER.read_text(), capture_output=True, text=True,
                          timeout=60, check=False)


def test_armoured_key_with_a_subkey_gives_gpgs_fingerprints() -> None:
    r = fingerprints(str(KEYS / "rsa-v4.asc"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == RSA


def test_binary_keyring_gives_gpgs_fingerprint() -> None:
    r = fingerprints(str(KEYS / "ed25519-v4.gpg"))
    assert r.returncode == 0 and r.stdout.splitlines() == ED25519


def test_keys_inside_a_deb_are_read_like_cuda_keyring(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        "Package: test-keyring\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    (root / "usr/share/keyrings").mkdir(parents=True)
    (root / "usr/share/keyrings/test-archive-keyring.gpg").write_bytes((KEYS / "ed25519-v4.gpg").read_bytes())
    (root / "etc/apt").mkdir(parents=True)
    (root / "etc/apt/not-a-keyring.gpg").write_bytes((KEYS / "rsa-v4.asc").read_bytes())  # outside keyrings/
    deb = tmp_path / "test-keyring.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    r = fingerprints(str(deb), "--deb")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ED25519


def test_no_key_or_no_file_fails(tmp_path: Path) -> None:
    junk = tmp_path / "junk.asc"
    junk.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n")
    assert fingerprints(str(junk)).returncode == 1
    html = tmp_path / "key.html"
    html.write_text("<html>404</html>")
    r = fingerprints(str(html))
    assert r.returncode == 1 and "cannot read keys" in r.stderr
    assert fingerprints(str(tmp_path / "missing.asc")).returncode == 1
