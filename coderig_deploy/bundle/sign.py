"""OpenSSH signatures over bundle.json (`ssh-keygen -Y`), namespace coderig-bundle.

A security team already has SSH keys and allowed-signers files; no new key
infrastructure is needed to sign on the connected side and check on the other.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem, RunFailed, UserInputError

NAMESPACE = "coderig-bundle"


class SignatureError(RunFailed):
    """A signature is missing, made by nobody allowed, or does not match bundle.json."""


def _ssh_keygen() -> str:
    binary = shutil.which("ssh-keygen")
    if binary is None:
        raise EnvironmentProblem("ssh-keygen not found: apt-get install openssh-client")
    return binary


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_key(key: Path) -> None:
    """Refuse a --sign file ssh-keygen cannot load as a private key, before a build downloads anything.

    An encrypted key cannot be checked further without its passphrase, which ssh-keygen
    asks for when it signs; an empty one (`-P ""`) tells an encrypted key from a bad file.
    """
    if not key.is_file():
        raise UserInputError(f"--sign {key}: no such key file")
    result = subprocess.run([_ssh_keygen(), "-y", "-P", "", "-f", str(key)], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, check=False, timeout=60)
    if result.returncode != 0 and "passphrase" not in result.stderr:
        raise UserInputError(f"--sign {key}: not a private key ssh-keygen can use: {_last_line(result.stderr)}")


def sign(manifest: Path, key: Path) -> Path:
    """Write `manifest`.sig with `key`; return its path."""
    if not key.is_file():
        raise UserInputError(f"--sign {key}: no such key file")
    signature = manifest.with_name(manifest.name + ".sig")
    signature.unlink(missing_ok=True)  # ssh-keygen refuses to overwrite one
    result = subprocess.run([_ssh_keygen(), "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(manifest)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, timeout=60)
    if result.returncode != 0 or not signature.is_file():
        raise UserInputError(f"--sign {key}: ssh-keygen could not sign: {_last_line(result.stderr)}")
    return signature


def verify(manifest: Path, signature: Path, allowed_signers: Path) -> str:
    """Check `signature` over `manifest` against `allowed_signers`; return the signer's identity."""
    if not allowed_signers.is_file():
        raise UserInputError(f"--allowed-signers {allowed_signers}: no such file")
    if not signature.is_file():
        raise SignatureError(f"{signature.name}: missing, but --allowed-signers asks for a signature")
    found = subprocess.run([_ssh_keygen(), "-Y", "find-principals", "-s", str(signature), "-f",
                            str(allowed_signers)], capture_output=True, text=True, check=False, timeout=60)
    identities = found.stdout.split()
    if found.returncode != 0 or not identities:
        raise SignatureError(f"{signature.name}: not made by a key in {allowed_signers}")
    for identity in identities:
        with open(manifest, "rb") as data:
            result = subprocess.run([_ssh_keygen(), "-Y", "verify", "-f", str(allowed_signers), "-I", identity,
                                     "-n", NAMESPACE, "-s", str(signature)], stdin=data, capture_output=True,
                                    text=True, check=False, timeout=60)
        if result.returncode == 0:
            return identity
    raise SignatureError(f"{signature.name}: does not match {manifest.name} "
                         f"(signed by {identities[0]}, but the content differs)")
