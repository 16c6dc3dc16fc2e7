"""A flat apt repository of the driver .debs a user supplies: apt/*.deb,
apt/Packages, apt/Packages.gz and apt/Release, generated here from each
package's control fields (read with dpkg-deb), with sizes and sha256 sums."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from coderig_deploy.bundle.files import atomic_write, publish, sha256_file
from coderig_deploy.bundle.manifest import AptPackage
from coderig_deploy.errors import EnvironmentProblem, UserInputError

APT_DIR = "apt"
_KEEP_OUT = ("Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512")


def control_fields(deb: Path) -> str:
    """The package's control stanza (`dpkg-deb --field`), without trailing blank lines."""
    if shutil.which("dpkg-deb") is None:
        raise EnvironmentProblem("dpkg-deb not found: apt-get install dpkg")
    result = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["dpkg-deb failed"])[-1]
        raise UserInputError(f"{deb}: not a Debian package ({reason})")
    return result.stdout.rstrip("\n")


def field(stanza: str, name: str) -> str:
    for line in stanza.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return ""


def stanza_for(control: str, filename: str, path: Path) -> str:
    kept = [line for line in control.splitlines() if line.split(":", 1)[0] not in _KEEP_OUT]
    data = path.read_bytes()
    extra = [f"Filename: ./{filename}", f"Size: {len(data)}",
             f"MD5sum: {hashlib.md5(data, usedforsecurity=False).hexdigest()}",
             f"SHA256: {hashlib.sha256(data).hexdigest()}"]
    return "\n".join(kept + extra)


def release_file(indexes: dict[str, bytes], now: datetime) -> bytes:
    lines = ["Origin: coderig-deploy bundle", "Label: coderig-deploy bundle", "Suite: bundle",
             "Codename: bundle", f"Date: {now.strftime('%a, %d %b %Y %H:%M:%S UTC')}", "SHA256:"]
    lines += [f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}" for name, data in sorted(indexes.items())]
    return ("\n".join(lines) + "\n").encode()


def find_debs(debs_dir: Path) -> list[Path]:
    """The .deb files of `debs_dir`; exit 2 when there is no such directory or no .deb in it."""
    if not debs_dir.is_dir():
        raise UserInputError(f"--debs {debs_dir}: no such directory")
    debs = sorted(debs_dir.glob("*.deb"))
    if not debs:
        raise UserInputError(f"--debs {debs_dir}: no .deb files in it")
    return debs


def build(bundle: Path, debs_dir: Path) -> tuple[list[AptPackage], list[str]]:
    """Copy every .deb of `debs_dir` into apt/ and write the indexes; (packages, index paths)."""
    debs = find_debs(debs_dir)
    target = bundle / APT_DIR
    target.mkdir(parents=True, exist_ok=True)
    packages, stanzas = [], []
    for deb in debs:
        control = control_fields(deb)
        final = target / deb.name
        if not (final.is_file() and sha256_file(final) == sha256_file(deb)):
            temporary = target / f".{deb.name}.tmp"
            shutil.copyfile(deb, temporary)
            publish(temporary, final)
        stanzas.append(stanza_for(control, deb.name, final))
        packages.append(AptPackage(package=field(control, "Package"), version=field(control, "Version"),
                                   architecture=field(control, "Architecture"), path=f"{APT_DIR}/{deb.name}"))
    text = ("\n\n".join(stanzas) + "\n").encode()
    indexes = {"Packages": text, "Packages.gz": gzip.compress(text, mtime=0)}
    for name, data in indexes.items():
        atomic_write(target / name, data)
    atomic_write(target / "Release", release_file(indexes, datetime.now(UTC)))
    return packages, [f"{APT_DIR}/{name}" for name in (*indexes, "Release")]
