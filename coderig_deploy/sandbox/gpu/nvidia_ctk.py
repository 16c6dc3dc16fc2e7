#!/usr/bin/python3 -I
# coderig-deploy sandbox: the simulated `nvidia-ctk` (NVIDIA Container Toolkit CLI).
# `nvidia-ctk runtime configure --runtime=docker [--config=FILE] [--set-as-default]`
# adds the `nvidia` runtime to Docker's daemon.json the way the real tool does,
# keeping every other key; it prints what it did and changes nothing when it is there.
import argparse
import json
import os
import sys

VERSION = "NVIDIA Container Toolkit CLI version 1.17.8 (coderig sandbox simulation)"


def configure(args):
    if args.runtime != "docker":
        print(f"unsupported runtime {args.runtime!r} (the sandbox simulates docker only)", file=sys.stderr)
        return 1
    config = {}
    if os.path.exists(args.config):
        with open(args.config) as handle:
            text = handle.read().strip()
        config = json.loads(text) if text else {}
    wanted = dict(config)
    runtimes = dict(wanted.get("runtimes", {}))
    runtimes["nvidia"] = {"args": [], "path": "nvidia-container-runtime"}
    wanted["runtimes"] = runtimes
    if args.set_as_default:
        wanted["default-runtime"] = "nvidia"
    if wanted != config:
        os.makedirs(os.path.dirname(args.config) or ".", exist_ok=True)
        with open(args.config + ".tmp", "w") as handle:
            json.dump(wanted, handle, indent=4)
            handle.write("\n")
        os.replace(args.config + ".tmp", args.config)
    print(f"Wrote updated config to {args.config}")
    return 0


def main(argv):
    parser = argparse.ArgumentParser(prog="nvidia-ctk")
    parser.add_argument("--version", action="store_true")
    sub = parser.add_subparsers(dest="command")
    runtime = sub.add_parser("runtime").add_subparsers(dest="action")
    conf = runtime.add_parser("configure")
    conf.add_argument("--runtime", default="docker")
    conf.add_argument("--config", default="/etc/docker/daemon.json")
    conf.add_argument("--set-as-default", action="store_true")
    args = parser.parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    if args.command == "runtime" and args.action == "configure":
        return configure(args)
    parser.print_usage(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
