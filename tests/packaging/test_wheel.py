"""The wheel carries profiles/, templates/ and playbooks/ and works from any directory."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_wheel_installs_and_runs_from_another_directory(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(dist.glob("coderig_deploy-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "coderig_deploy/_shipped/profiles/dual-4090.yaml" in names
    assert any(n.startswith("coderig_deploy/_shipped/playbooks/") for n in names)
    assert any(n.startswith("coderig_deploy/_shipped/templates/") for n in names)
    assert "coderig_deploy/data/gpus.tsv" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run([str(venv / "bin" / "coderig-deploy"), "profiles", "list", "--json"], cwd=elsewhere,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = {row["name"] for row in json.loads(r.stdout)}
    assert {"budget-4070", "midrange-4090", "dual-4090"} <= names
