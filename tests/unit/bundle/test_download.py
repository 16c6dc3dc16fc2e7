"""Resumable downloads against a local server that honours Range and can cut a transfer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from coderig_deploy.bundle.download import DownloadError, download
from tests.unit.bundle.conftest import RangeServer


def _blob(server: RangeServer, size: int = 3 << 20) -> tuple[str, str]:
    data = hashlib.sha256(b"seed").digest() * (size // 32)
    (server.root / "blob").write_bytes(data)
    return f"{server.url}/blob", hashlib.sha256(data).hexdigest()


def test_an_interrupted_transfer_resumes_with_range(range_server: RangeServer, tmp_path: Path) -> None:
    url, digest = _blob(range_server)
    range_server.cut_after = 1 << 20
    seen: list[tuple[int, int | None]] = []
    download(url, tmp_path / "out" / "blob", digest, tmp_path / ".partial", lambda n, d, t: seen.append((d, t)))
    assert hashlib.sha256((tmp_path / "out" / "blob").read_bytes()).hexdigest() == digest
    assert [r for _, r in range_server.requests] == ["", "bytes=1048576-"]
    assert seen[-1] == (3 << 20, 3 << 20)
    assert not (tmp_path / ".partial" / "blob").exists()


def test_a_partial_file_from_an_earlier_run_is_continued(range_server: RangeServer, tmp_path: Path) -> None:
    url, digest = _blob(range_server)
    partial = tmp_path / ".partial"
    partial.mkdir()
    (partial / "blob").write_bytes((range_server.root / "blob").read_bytes()[:12345])
    download(url, tmp_path / "blob", digest, partial)
    assert range_server.requests == [("/blob", "bytes=12345-")]
    assert hashlib.sha256((tmp_path / "blob").read_bytes()).hexdigest() == digest


def test_a_server_that_ignores_range_restarts_from_zero(range_server: RangeServer, tmp_path: Path) -> None:
    url, digest = _blob(range_server)
    range_server.ignore_range = True
    partial = tmp_path / ".partial"
    partial.mkdir()
    (partial / "blob").write_bytes(b"x" * 1000)
    download(url, tmp_path / "blob", digest, partial)
    assert hashlib.sha256((tmp_path / "blob").read_bytes()).hexdigest() == digest


def test_a_wrong_digest_is_refused_and_nothing_sits_under_the_final_name(range_server: RangeServer,
                                                                        tmp_path: Path) -> None:
    url, _ = _blob(range_server)
    with pytest.raises(DownloadError, match="does not match the expected " + "f" * 64):
        download(url, tmp_path / "blob", "f" * 64, tmp_path / ".partial")
    assert not (tmp_path / "blob").exists()
    assert not (tmp_path / ".partial" / "blob").exists()


def test_a_missing_file_names_the_url_and_the_status(range_server: RangeServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"GET http://127\.0\.0\.1:\d+/nothing: HTTP 404"):
        download(f"{range_server.url}/nothing", tmp_path / "x", "0" * 64, tmp_path / ".partial")


def test_a_full_disk_is_a_clear_error_without_retries(range_server: RangeServer, tmp_path: Path) -> None:
    from coderig_deploy.bundle.files import BundleWriteError

    url, digest = _blob(range_server)
    partial = tmp_path / ".partial"
    partial.mkdir()
    (partial / "blob").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(BundleWriteError, match="cannot write .*blob: No space left on device"):
        download(url, tmp_path / "blob", digest, partial)
    assert len(range_server.requests) == 1 and not (tmp_path / "blob").exists()


def test_too_little_free_space_is_refused_before_downloading(tmp_path: Path) -> None:
    from coderig_deploy.bundle.files import BundleWriteError, require_space

    with pytest.raises(BundleWriteError, match=r"model m needs 4194304\.0 GiB, but .* GiB free"):
        require_space(tmp_path, 1 << 52, "model m")
    require_space(tmp_path, 1, "model m")
