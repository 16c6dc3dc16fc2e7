#!/usr/bin/python3 -I
# coderig-deploy sandbox: the simulated `nvidia-container-runtime`, a runc shim like the
# real one: on `create`, it adds the prestart hook to the bundle's OCI spec when the
# container asks for GPUs (NVIDIA_VISIBLE_DEVICES), then runs runc with the same arguments.
import json
import os
import sys

HOOK = "/usr/bin/nvidia-container-runtime-hook"


def add_hook(bundle):
    path = os.path.join(bundle, "config.json")
    with open(path) as handle:
        spec = json.load(handle)
    env = spec.get("process", {}).get("env", [])
    if not any(item.startswith("NVIDIA_VISIBLE_DEVICES=") for item in env):
        return
    prestart = spec.setdefault("hooks", {}).setdefault("prestart", [])
    if not any(hook.get("path") == HOOK for hook in prestart):
        prestart.append({"path": HOOK, "args": ["nvidia-container-runtime-hook", "prestart"]})
        with open(path, "w") as handle:
            json.dump(spec, handle)


def main(argv):
    if "create" in argv:
        for flag in ("--bundle", "-b"):
            if flag in argv[:-1]:
                add_hook(argv[argv.index(flag) + 1])
    os.execvp("runc", ["runc", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
