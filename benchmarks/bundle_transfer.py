"""apply --bundle's transfer cost: a synthetic model blob (>= 2 GB) sent to 3 sandbox hosts.

Measures, in one run on one machine:
1. first copy: the bundle_sync role (the blob streamed over the run's SSH connection and
   hashed on the host as it arrives, written under a temporary name, renamed once its
   sha256 matches, marked) to 3 hosts in parallel, against a plain `scp` of the same file
   to the same 3 hosts in parallel (run before and after the bundle copy, the mean taken);
   throughput ratio = scp time / bundle time (goal >= 0.9),
   once for the whole play and once for the transfer alone (the play's time less the
   rerun's with the blob present, which does everything but the copy: Ansible's start,
   facts, directories, the presence check);
2. rerun: the same play again with the blob present, against the same play with no
   model at all (empty piece list), the two interleaved; time ratio of the medians,
   present / none (goal <= 1.1: a present blob is neither copied nor re-hashed).
The play is the role alone (ansible-playbook, the lab's inventory, host keys checked,
the ssh_args a rendered project's ansible.cfg sets), so the figures are the transfer's,
not the rest of an apply's.

Usage (root; boots and removes its own lab): .venv/bin/python benchmarks/bundle_transfer.py [--gib 2] [--repeat 3]
(--roles-path DIR measures another version of the role, e.g. one exported with git archive.)
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coderig_deploy.resources import shipped_dir
from coderig_deploy.sandbox import HostSpec, Lab

HOSTS = ("xfer1", "xfer2", "xfer3")
BIN = Path(sys.executable).parent
STORE = "/var/lib/coderig-bench/models"
PLAY = """\
- name: Sync the bundle's pieces
  hosts: all
  gather_facts: false
  tasks:
    - name: Copy the model pieces
      ansible.builtin.import_role:
        name: bundle_sync
        tasks_from: models
"""


def make_blob(directory: Path, gib: float) -> tuple[Path, str]:
    """A file of pseudo-random-looking bytes (not compressible by ssh), and its sha256."""
    digest = hashlib.sha256()
    block = hashlib.sha512(b"coderig").digest() * (1 << 14)  # 1 MiB
    path = directory / "models" / "blobs" / "blob"
    path.parent.mkdir(parents=True)
    with path.open("wb") as out:
        for i in range(int(gib * 1024)):
            chunk = i.to_bytes(8, "little") + block[8:]
            out.write(chunk)
            digest.update(chunk)
    final = path.with_name(f"sha256-{digest.hexdigest()}")
    path.rename(final)
    return final, digest.hexdigest()


def play_vars(bundle: Path, blob: Path | None, sha: str) -> dict[str, object]:
    blobs = [] if blob is None else [{"src": f"models/blobs/{blob.name}", "dest": f"blobs/{blob.name}",
                                      "sha256": sha, "size": blob.stat().st_size}]
    manifest = bundle / "models" / "manifest"
    return {"bundle_sync_source_dir": str(bundle), "bundle_sync_models_dir": STORE,
            "bundle_sync_models_owner": "root", "bundle_sync_models_group": "root",
            "bundle_sync_store_dirs": ["blobs", "manifests"], "bundle_sync_blobs": blobs,
            "bundle_sync_manifest": {"src": "models/manifest", "dest": "manifests/m",
                                     "sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                                     "size": manifest.stat().st_size}}


def project_ssh_args() -> str:
    """The ssh_args line of the rendered ansible.cfg (a literal line of its template)."""
    template = shipped_dir("templates") / "ansible.cfg.j2"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(template.read_text())
    return parser.get("ssh_connection", "ssh_args")


def run_play(lab: Lab, work: Path, variables: dict[str, object], roles: Path) -> float:
    (work / "vars.json").write_text(json.dumps(variables))
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(roles),
           "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORKS": "3",
           "ANSIBLE_SSH_ARGS": project_ssh_args()}
    started = time.monotonic()
    ran = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(lab.inventory_path), str(work / "play.yml"),
                          "-e", f"@{work / 'vars.json'}"], env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if ran.returncode != 0:
        raise SystemExit(f"play failed:\n{ran.stdout[-3000:]}{ran.stderr[-2000:]}")
    return seconds


def scp_all(lab: Lab, blob: Path) -> float:
    def one(host: dict[str, str]) -> None:
        subprocess.run(["scp", "-q", "-i", str(lab.key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
                        "-o", "StrictHostKeyChecking=yes", str(blob), f"root@{host['ip']}:/var/tmp/scp-copy"],
                       check=True)
    hosts = [{"ip": h.ip} for h in lab.hosts()]
    started = time.monotonic()
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(one, hosts))
    return time.monotonic() - started


def clear(lab: Lab) -> None:
    for name in HOSTS:
        lab.ssh(name, f"rm -rf {STORE} /var/lib/coderig/bundle /var/tmp/scp-copy", timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="blob size in GiB (>= 2 for the issue's figure)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reruns of each rerun variant")
    parser.add_argument("--roles-path", type=Path, default=shipped_dir("playbooks") / "roles",
                        help="the roles directory holding bundle_sync (default: this checkout's)")
    args = parser.parse_args()
    roles = args.roles_path.resolve()
    with tempfile.TemporaryDirectory(prefix="coderig-xfer-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        (work / "play.yml").write_text(PLAY)
        bundle = work / "bundle"
        blob, sha = make_blob(bundle, args.gib)
        size = blob.stat().st_size
        (bundle / "models" / "manifest").write_text('{"layers": []}\n')
        lab = Lab(work / "lab")
        lab.up([HostSpec(name=n, gpu="rtx-4070") for n in HOSTS], timeout=300)
        try:
            load_before = os.getloadavg()
            # scp before and after the first copy, their mean the reference: on a shared
            # machine the load drifts, and bracketing cancels a steady drift.
            clear(lab)
            scp_runs = [scp_all(lab, blob)]
            clear(lab)
            first_s = run_play(lab, work, play_vars(bundle, blob, sha), roles)
            present: list[float] = []
            none: list[float] = []
            for _ in range(args.repeat):  # interleaved, for the same reason
                present.append(run_play(lab, work, play_vars(bundle, blob, sha), roles))
                none.append(run_play(lab, work, play_vars(bundle, None, sha), roles))
            clear(lab)
            scp_runs.append(scp_all(lab, blob))
            scp_s = statistics.mean(scp_runs)
            load_after = os.getloadavg()
        finally:
            lab.down()
    result = {
        "roles_path": str(roles), "blob_bytes": size, "hosts": len(HOSTS), "cpus": os.cpu_count(), "ssh_args": project_ssh_args(),
        "load_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "scp_s": round(scp_s, 2), "scp_before_after_s": [round(t, 2) for t in scp_runs], "bundle_first_s": round(first_s, 2),
        "first_copy_throughput_ratio": round(scp_s / first_s, 3),
        "transfer_s": round(first_s - statistics.median(present), 2),
        "first_copy_transfer_ratio": round(scp_s / (first_s - statistics.median(present)), 3),
        "rerun_present_s": [round(s, 2) for s in present], "rerun_no_model_s": [round(s, 2) for s in none],
        "rerun_ratio": round(statistics.median(present) / statistics.median(none), 3),
        "goals": {"first_copy_throughput_ratio": ">= 0.9", "first_copy_transfer_ratio": ">= 0.9",
                  "rerun_ratio": "<= 1.1"},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
