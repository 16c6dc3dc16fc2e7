import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

from coderig_deploy.sandbox.release import ARCHIVE, CHECKSUMS, build_release


def test_release_is_deterministic_and_laid_out_like_ollama(tmp_path: Path) -> None:
    first = build_release(tmp_path / "a")
    second = build_release(tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.archive.name == ARCHIVE
    assert first.url_path() == f"ollama/releases/download/v{first.version}/{ARCHIVE}"
    line = (first.directory / CHECKSUMS).read_text()
    assert line == f"{hashlib.sha256(first.archive.read_bytes()).hexdigest()}  ./{ARCHIVE}\n"
    raw = subprocess.run(["zstd", "-dc", str(first.archive)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["./bin/ollama"].mode == 0o755
    for name in ("lib/ollama/ollama_sim/server.py", "lib/ollama/ollama_sim/_fit.py",
                 "lib/ollama/coderig_sim_catalog.json", "lib/ollama/ollama_sim/bench_answers.json"):
        assert f"./{name}" in members
    assert all(m.uid == 0 and m.uname == "root" for m in members.values())


def test_release_runs_with_plain_system_python(tmp_path: Path) -> None:
    release = build_release(tmp_path / "art")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(release.archive), "-C", str(prefix)], check=True)
    out = subprocess.run([str(prefix / "bin" / "ollama"), "--version"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "OLLAMA_HOST": "127.0.0.1:1"}, check=True)
    assert out.stdout.splitlines()[-1] == f"Warning: client version is {release.version}"
