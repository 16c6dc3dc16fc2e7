"""A fake NVIDIA apt repository and a Debian archive stand-in, served by the lab's artifact server.

Part of the simulated hardware seam: the packages are empty (dpkg-deb dummies) but
carry the real names, versions and dependency shapes, so the nvidia_driver role's
repository setup, apt pinning, branch check and Debian prerequisites run through
real apt on sandbox hosts:
- branch meta-packages `nvidia-open-570` / `-580` and the branchless `nvidia-open`
  (590) with `nvidia-driver-pinning-590` (NVIDIA's names, driver_branches.tsv);
- a shared branchless `nvidia-driver` in three versions, which `>=` dependencies
  let apt take from the newest branch;
- a transitional `libnvidia-compute-570` at a 580 version that only depends on
  `libnvidia-compute-580` (the shape of Ubuntu's retired 570 packages);
- `nvidia-kernel-open-dkms`, needing `dkms` (main) and `nvidia-support` (contrib);
- the Debian stand-in (`dists/bookworm`, main and contrib): dkms, nvidia-support and
  `linux-headers-<running kernel>` (nspawn hosts run the controller's kernel).
Both are signed with a throwaway key made per lab; its fingerprint is the pin.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coderig_deploy.errors import EnvironmentProblem

SUITE = "bookworm"
KEY_NAME = "coderig sandbox apt repositories (test only)"


@dataclass(frozen=True)
class Pkg:
    name: str
    version: str
    depends: str = ""
    arch: str = "amd64"


@dataclass(frozen=True)
class FakeRepos:
    fingerprint: str
    nvidia: Path  # flat repository ("Suites: ./"), with key.asc
    debian: Path  # dists/bookworm, components main and contrib


def _driver(branch_version: str, meta: str) -> list[Pkg]:
    branch = branch_version.split(".")[0]
    return [
        Pkg(meta, f"{branch_version}-1", f"nvidia-driver (>= {branch_version}), "
                                         f"nvidia-kernel-open-dkms (>= {branch_version}), "
                                         f"libnvidia-compute-{branch} (>= {branch_version})"),
        Pkg("nvidia-driver", f"{branch_version}-1", f"libnvidia-compute-{branch} (>= {branch_version})"),
        Pkg("nvidia-kernel-open-dkms", f"{branch_version}-1", "dkms (>= 3.0.10), nvidia-support", "all"),
        Pkg(f"libnvidia-compute-{branch}", f"{branch_version}-1"),
    ]


def nvidia_packages() -> list[Pkg]:
    return [
        *_driver("570.195.03", "nvidia-open-570"),
        *_driver("580.95.05", "nvidia-open-580"),
        *_driver("590.44.01", "nvidia-open"),
        Pkg("nvidia-driver-pinning-590", "590.44.01-1", "", "all"),
        # transitional: the 570 name at a 580 version, pulling in 580 (issue 13, finding 1)
        Pkg("libnvidia-compute-570", "580.95.05-1", "libnvidia-compute-580 (= 580.95.05-1)"),
    ]


def debian_packages(kernel: str) -> dict[str, list[Pkg]]:
    return {
        "main": [Pkg("dkms", "3.0.10-8+deb12u1", "", "all"), Pkg(f"linux-headers-{kernel}", "1-1")],
        "contrib": [Pkg("nvidia-support", "20220217+3~deb12u1", "", "all")],
    }


def _deb(pkg: Pkg, out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "DEBIAN").mkdir()
        depends = f"Depends: {pkg.depends}\n" if pkg.depends else ""
        (root / "DEBIAN/control").write_text(
            f"Package: {pkg.name}\nVersion: {pkg.version}\nArchitecture: {pkg.arch}\n"
            f"Maintainer: coderig sandbox <root@localhost>\n{depends}"
            f"Description: sandbox stand-in for {pkg.name} (empty; coderig-deploy tests)\n")
        doc = root / "usr/share/doc" / pkg.name
        doc.mkdir(parents=True)
        (doc / "coderig-sandbox").write_text(f"{pkg.name} {pkg.version}\n")
        target = out / f"{pkg.name}_{pkg.version.replace(':', '%3a')}_{pkg.arch}.deb"
        _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(target)])
    return target


def _stanza(deb: Path, filename: str) -> str:
    control = _run(["dpkg-deb", "-f", str(deb)]).rstrip("\n")
    data = deb.read_bytes()
    return (f"{control}\nFilename: {filename}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")


def _release(base: Path, files: list[Path], extra: str) -> Path:
    lines = [f"{extra}Date: Thu, 01 Jan 2026 00:00:00 UTC", "SHA256:"]
    for path in files:
        data = path.read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {path.relative_to(base).as_posix()}")
    release = base / "Release"
    release.write_text("\n".join(lines) + "\n")
    return release


def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    except FileNotFoundError:
        raise EnvironmentProblem(f"{argv[0]} is missing (the sandbox's fake apt repositories need it): "
                                 "apt-get install gpg dpkg") from None
    if proc.returncode != 0:
        raise EnvironmentProblem(f"{' '.join(argv[:3])} failed: {proc.stderr.strip()}")
    return proc.stdout


@contextmanager
def signing_key(gnupg: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A signing key of this lab (made once): the gpg environment and its fingerprint, for the `with` block.

    gpg starts an agent for the key directory and leaves it running after its last command, one daemon per
    directory for as long as the machine runs; leaving the block stops it, whatever happened inside."""
    gnupg.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    try:
        listing = _run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env)
        if "fpr:" not in listing:
            _run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", KEY_NAME, "ed25519", "sign", "never"], env)
            listing = _run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], env)
        yield env, next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    finally:
        try:
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True, check=False)
        except FileNotFoundError:  # no gpgconf: the gpg commands above failed before any agent started
            pass


def _sign(release: Path, env: dict[str, str], fingerprint: str) -> None:
    for argv in (["--clearsign", "-o", str(release.with_name("InRelease"))],
                 ["--detach-sign", "--armor", "-o", str(release.with_name("Release.gpg"))]):
        _run(["gpg", "--batch", "--yes", "--local-user", fingerprint, *argv, str(release)], env)


def build(served: Path, gnupg: Path, kernel: str | None = None) -> FakeRepos:
    """Write both repositories under `served` (the artifact server's root)/apt, signed."""
    with signing_key(gnupg) as (env, fingerprint):
        return _write(served, env, fingerprint, kernel)


def _write(served: Path, env: dict[str, str], fingerprint: str, kernel: str | None) -> FakeRepos:
    nvidia, debian = served / "apt/nvidia", served / "apt/debian"
    nvidia.mkdir(parents=True, exist_ok=True)
    stanzas = [_stanza(deb, f"./{deb.name}") for deb in (_deb(p, nvidia) for p in nvidia_packages())]
    (nvidia / "Packages").write_text("\n".join(stanzas))
    _sign(_release(nvidia, [nvidia / "Packages"], "Origin: coderig sandbox NVIDIA stand-in\n"), env, fingerprint)
    (nvidia / "key.asc").write_text(_run(["gpg", "--batch", "--armor", "--export", fingerprint], env))
    indexes = []
    for component, pkgs in debian_packages(kernel or os.uname().release).items():
        pool = debian / "pool" / component
        pool.mkdir(parents=True, exist_ok=True)
        index = debian / "dists" / SUITE / component / "binary-amd64" / "Packages"
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text("\n".join(_stanza(d, f"pool/{component}/{d.name}") for d in (_deb(p, pool) for p in pkgs)))
        indexes.append(index)
    dist = debian / "dists" / SUITE
    _sign(_release(dist, indexes, f"Origin: coderig sandbox Debian stand-in\nSuite: {SUITE}\nCodename: {SUITE}\n"
                                  "Architectures: amd64\nComponents: main contrib\n"), env, fingerprint)
    (debian / "key.asc").write_text((nvidia / "key.asc").read_text())
    return FakeRepos(fingerprint, nvidia, debian)
