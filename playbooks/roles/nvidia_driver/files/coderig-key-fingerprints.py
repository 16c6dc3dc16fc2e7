#!/usr/bin/env python3
"""Print the fingerprints of the OpenPGP keys in a key file, or in a .deb's keyrings.

Runs on the host with its own python3 (stdlib only; gpg is often not installed,
apt needs only gpgv). Reads an ASCII-armoured or binary key file, or with --deb
every usr/share/keyrings/*.gpg|*.asc of a package (cuda-keyring), and prints one
line per key: "pub <FINGERPRINT>" for a primary key, "sub <FINGERPRINT>" for a
subkey. Fingerprints follow RFC 4880 12.2 (v4: SHA-1) and RFC 9580 5.5.4 (v6:
SHA-256). Exit status 1 when no key is found.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import subprocess
import sys
import tarfile

PUBLIC_KEY, PUBLIC_SUBKEY = 6, 14


def dearmor(data: bytes) -> bytes:
    """The binary packets of an armoured block (binary input is returned as is)."""
    text = data.decode("ascii", errors="replace")
    if "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        return data
    body = text.split("-----BEGIN PGP PUBLIC KEY BLOCK-----", 1)[1].split("-----END", 1)[0]
    lines = body.strip().splitlines()
    if "" in [line.strip() for line in lines]:  # armour headers end at the first blank line
        lines = lines[[line.strip() for line in lines].index("") + 1:]
    return base64.b64decode("".join(line.strip() for line in lines if not line.startswith("=")))


def packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of each packet, old and new header formats."""
    found, pos = [], 0
    while pos < len(data):
        header = data[pos]
        if not header & 0x80:
            raise ValueError(f"not an OpenPGP packet at byte {pos}")
        if header & 0x40:  # new format
            tag, pos = header & 0x3F, pos + 1
            first = data[pos]
            if first < 192:
                length, pos = first, pos + 1
            elif first < 224:
                length, pos = ((first - 192) << 8) + data[pos + 1] + 192, pos + 2
            elif first == 255:
                length, pos = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5
            else:
                raise ValueError("partial body lengths do not occur in key packets")
        else:
            tag, kind, pos = (header >> 2) & 0x0F, header & 0x03, pos + 1
            size = {0: 1, 1: 2, 2: 4}.get(kind)
            if size is None:
                raise ValueError("indeterminate packet length")
            length, pos = int.from_bytes(data[pos:pos + size], "big"), pos + size
        found.append((tag, data[pos:pos + length]))
        pos += length
    return found


def fingerprint(body: bytes) -> str:
    version = body[0]
    if version == 4:
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()
    if version in (5, 6):
        prefix = b"\x9a" if version == 5 else b"\x9b"
        return hashlib.sha256(prefix + len(body).to_bytes(4, "big") + body).hexdigest().upper()
    raise ValueError(f"key packet version {version} has no supported fingerprint")


def fingerprints(data: bytes) -> list[str]:
    return [f"{'pub' if tag == PUBLIC_KEY else 'sub'} {fingerprint(body)}"
            for tag, body in packets(dearmor(data)) if tag in (PUBLIC_KEY, PUBLIC_SUBKEY)]


def deb_keyrings(path: str) -> list[bytes]:
    """The keyring files a .deb would install under usr/share/keyrings/."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", path], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return [archive.extractfile(m).read() for m in archive.getmembers()  # type: ignore[union-attr]
                if m.isfile() and m.name.lstrip("./").startswith("usr/share/keyrings/")
                and m.name.endswith((".gpg", ".asc"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--deb", action="store_true", help="read the keyrings inside a .deb")
    args = parser.parse_args()
    try:
        blobs = deb_keyrings(args.path) if args.deb else [open(args.path, "rb").read()]
        lines = [line for blob in blobs for line in fingerprints(blob)]
    except (OSError, ValueError, IndexError, subprocess.CalledProcessError, tarfile.TarError) as exc:
        print(f"cannot read keys from {args.path}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0 if lines else 1


if __name__ == "__main__":
    sys.exit(main())
