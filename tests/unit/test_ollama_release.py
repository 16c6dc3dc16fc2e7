"""The Ollama pin against the release's published sha256sum.txt, served by a local stand-in."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from coderig_deploy.bundle.ollama import RELEASES
from coderig_deploy.ollama_release import (
    DEFAULT_ARCHIVES,
    ReleaseMismatch,
    Unreachable,
    check_release,
    fetch_with_deadline,
)
from coderig_deploy.resources import shipped_dir

VERSION = "0.33.3"
AMD64, ARM64 = "a" * 64, "b" * 64
LISTING = f"{AMD64}  ./ollama-linux-amd64.tar.zst\n{ARM64}  ./ollama-linux-arm64.tar.zst\n{'c' * 64}  ./ollama-darwin.tgz\n"


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[str]:
    """A release laid out like GitHub's download paths; yields the v<version> directory URL."""
    directory = tmp_path / "www" / f"v{VERSION}"
    directory.mkdir(parents=True)
    (directory / "sha256sum.txt").write_text(LISTING)
    handler = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "www")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v{VERSION}"
    server.shutdown()


def test_a_pin_the_release_lists_is_verified(release_server: str) -> None:
    result = check_release(VERSION, f"{release_server}/ollama-linux-amd64.tar.zst", f"sha256:{AMD64}")
    assert result.status == "verified"
    assert f"{release_server}/sha256sum.txt" in result.detail
    assert result.check_result().status == "pass"


def test_a_pin_that_disagrees_is_refused_naming_the_list(release_server: str) -> None:
    with pytest.raises(ReleaseMismatch, match=rf"sha256:{'d' * 64} disagrees with {release_server}/sha256sum.txt "
                                              rf"\(ollama-linux-amd64.tar.zst {AMD64}\)"):
        check_release(VERSION, f"{release_server}/ollama-linux-amd64.tar.zst", "sha256:" + "d" * 64)


def test_another_archive_s_digest_is_not_this_archive_s_pin(release_server: str) -> None:
    with pytest.raises(ReleaseMismatch, match="disagrees"):
        check_release(VERSION, f"{release_server}/ollama-linux-amd64.tar.zst", f"sha256:{ARM64}")


def test_an_archive_missing_from_the_list_is_refused_by_name(release_server: str) -> None:
    with pytest.raises(ReleaseMismatch, match="does not list ollama-linux-riscv64.tar.zst"):
        check_release(VERSION, f"{release_server}/ollama-linux-riscv64.tar.zst", f"sha256:{AMD64}")


def test_a_release_without_a_list_is_refused(release_server: str) -> None:
    url = release_server.replace(VERSION, "0.33.0")
    with pytest.raises(ReleaseMismatch, match=rf"{url}/sha256sum.txt: HTTP 404: Ollama 0.33.0 publishes no"):
        check_release("0.33.0", f"{url}/ollama-linux-amd64.tar.zst", None)


def test_a_mirror_without_a_list_but_with_a_pin_is_skipped_not_refused(release_server: str) -> None:
    url = release_server.replace(VERSION, "0.33.0")
    result = check_release("0.33.0", f"{url}/ollama-linux-amd64.tar.zst", f"sha256:{AMD64}")
    assert result.status == "skipped" and "HTTP 404" in result.detail


def test_a_checksum_url_is_the_list_that_is_read(release_server: str) -> None:
    result = check_release(VERSION, f"{release_server}/ollama-linux-arm64.tar.zst",
                           f"sha256:{release_server}/sha256sum.txt")
    assert result.status == "verified" and "archives listed" in result.detail


def test_the_default_source_is_the_publisher_and_both_architectures_are_checked() -> None:
    asked: list[str] = []

    def fetch(url: str, timeout: float) -> bytes:
        asked.append(url)
        return LISTING.encode()

    assert check_release(VERSION, None, f"sha256:{ARM64}", fetch=fetch).status == "verified"
    assert asked == [f"{RELEASES}/v{VERSION}/sha256sum.txt"]
    with pytest.raises(ReleaseMismatch, match="does not list ollama-linux-arm64.tar.zst"):
        check_release(VERSION, None, None, fetch=lambda url, t: LISTING.split("\n")[0].encode())


def test_the_publisher_s_404_refuses_even_with_a_pin() -> None:
    def fetch(url: str, timeout: float) -> bytes:
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)  # type: ignore[arg-type]

    with pytest.raises(ReleaseMismatch, match="HTTP 404"):
        check_release("0.33.0", None, f"sha256:{AMD64}", fetch=fetch)


def test_the_role_downloads_what_the_check_reads() -> None:
    defaults = yaml.safe_load((shipped_dir("playbooks") / "roles/ollama/defaults/main.yml").read_text())
    assert defaults["ollama_download_base"] == RELEASES + "/v{{ ollama_version }}"
    assert defaults["ollama_archive_url"].endswith("/ollama-linux-{{ ollama_arch }}.tar.zst")
    assert {f"ollama-linux-{arch}.tar.zst" for arch in ("amd64", "arm64")} == set(DEFAULT_ARCHIVES)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_route_skips_and_says_so() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v{VERSION}/ollama-linux-amd64.tar.zst"
    result = check_release(VERSION, url, f"sha256:{AMD64}")
    assert result.status == "skipped"
    assert result.check_result().status == "skip"
    assert result.line().startswith("Ollama release check skipped: http://127.0.0.1:")
    assert "not reachable from this controller" in result.detail


def test_a_server_that_never_answers_counts_as_offline() -> None:
    with socket.socket() as listener:  # accepts (the kernel's backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(Unreachable):
            fetch_with_deadline(f"http://127.0.0.1:{port}/sha256sum.txt", 0.3)
        result = check_release(VERSION, f"http://127.0.0.1:{port}/ollama-linux-amd64.tar.zst", None, timeout=0.3)
    assert result.status == "skipped"


def test_apply_with_a_wrong_pin_exits_2_naming_the_file_before_any_host(release_server: str, tmp_path: Path) -> None:
    wrong = "sha256:" + "d" * 64
    proc = subprocess.run([sys.executable, "-m", "coderig_deploy", "apply", "--profile", "budget-4070",
                           "--ollama-url", f"{release_server}/ollama-linux-amd64.tar.zst", "--ollama-sha256", wrong,
                           "--runs-dir", str(tmp_path / "runs"), "root@192.0.2.10"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("error:") == 1
    assert f"{release_server}/sha256sum.txt" in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()  # refused before a run directory, let alone a host
