#!/usr/bin/python3 -I
# coderig-deploy sandbox: the simulated NVIDIA Container Toolkit's OCI prestart hook.
# dockerd (daemon/nvidia_linux.go) adds `nvidia-container-runtime-hook prestart` to a
# container that has a GPU device request, with NVIDIA_VISIBLE_DEVICES in its env.
# Like the real hook (through nvidia-container-cli), it enters the container's mount
# namespace before pivot_root and bind-mounts the driver's user-space pieces: here the
# simulated nvidia-smi, libnvidia-ml.so.1, the cards (gpus.json, filtered to the visible
# devices) and the shared memory-use directory the simulated driver keeps in /run.
import json
import os
import subprocess
import sys

GPUS = "/etc/coderig-sim/gpus.json"
READ_ONLY = ("/usr/bin/nvidia-smi", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")
SHARED = "/run/coderig-sim"
STATE_DIR = "/run/nvidia-container-hook"
PROC_DRIVER = "/proc/driver"


def visible(env):
    for item in env:
        if item.startswith("NVIDIA_VISIBLE_DEVICES="):
            return item.split("=", 1)[1]
    return None


def select(document, wanted):
    if wanted in ("all", ""):
        return document
    keys = {key.strip() for key in wanted.split(",")}
    document["gpus"] = [g for g in document["gpus"] if str(g["index"]) in keys or g["uuid"] in keys]
    for index, gpu in enumerate(document["gpus"]):
        gpu["index"] = index
    return document


def bind(pid, source, target, read_only):
    options = ["-o", "ro"] if read_only else []
    subprocess.run(["nsenter", f"--target={pid}", "--mount", "--", "mount", "--bind", *options,
                    source, target], check=True)


def prepare(root, path, directory):
    target = os.path.join(root, path.lstrip("/"))
    if directory:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    return target


def prestart():
    state = json.load(sys.stdin)
    bundle, pid = state["bundle"], state["pid"]
    with open(os.path.join(bundle, "config.json")) as handle:
        config = json.load(handle)
    wanted = visible(config.get("process", {}).get("env", []))
    if wanted is None or wanted in ("void", "none") or not os.path.exists(GPUS):
        return 0
    root = config["root"]["path"]
    root = root if os.path.isabs(root) else os.path.join(bundle, root)
    with open(GPUS) as handle:
        document = select(json.load(handle), wanted)
    os.makedirs(STATE_DIR, exist_ok=True)
    filtered = os.path.join(STATE_DIR, state.get("id", str(pid)) + ".json")
    with open(filtered, "w") as handle:
        json.dump(document, handle, indent=2)
    bind(pid, filtered, prepare(root, GPUS, False), True)
    for path in READ_ONLY:
        if os.path.exists(path):
            bind(pid, path, prepare(root, path, False), True)
    if os.path.isdir(SHARED):
        bind(pid, SHARED, prepare(root, SHARED, True), False)
    # The driver's /proc entries, as nvidia-container-cli mounts /proc/driver/nvidia: the
    # container's fresh procfs is already mounted, and the simulated module's files are
    # over the host's /proc/driver (coderig-sim-nvidia.service).
    if os.path.exists(PROC_DRIVER + "/nvidia/version"):
        bind(pid, PROC_DRIVER, os.path.join(root, PROC_DRIVER.lstrip("/")), True)
    return 0


def main(argv):
    if argv[:1] == ["prestart"]:
        return prestart()
    if argv[:1] in (["poststop"], ["poststart"]):
        return 0
    print("usage: nvidia-container-runtime-hook prestart (reads the OCI state on stdin)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
