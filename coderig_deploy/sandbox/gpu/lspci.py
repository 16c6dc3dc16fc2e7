#!/usr/bin/python3
"""Simulated `lspci` of a coderig sandbox host (stdlib only).

Lists the virtual machine's host bridge and the simulated NVIDIA cards described in
/etc/coderig-sim/gpus.json, in the formats of pciutils: plain, -n, -nn, with -d
vendor[:device] filtering and -k (kernel driver lines, when the driver is present).
"""

from __future__ import annotations

import json
import os
import sys

GPUS_JSON = os.environ.get("CODERIG_SIM_GPUS", "/etc/coderig-sim/gpus.json")
DRIVER_MARKER = os.environ.get("CODERIG_SIM_DRIVER", "/proc/driver/nvidia/version")
HOST_BRIDGE = ("00:00.0", "Host bridge", "0600", "Intel Corporation",
               "440FX - 82441FX PMC [Natoma]", "8086", "1237", "02")


def devices(doc: dict) -> list[tuple[str, str, str, str, str, str, str, str]]:
    rows = [HOST_BRIDGE]
    for gpu in sorted(doc.get("gpus", []) + doc.get("missing_gpus", []), key=lambda g: g["bus_id"]):
        slot = gpu["bus_id"].split(":", 1)[1].lower()
        rows.append((slot, "VGA compatible controller", "0300", "NVIDIA Corporation",
                     gpu["lspci_name"], "10de", gpu["pci_device_id"].lower(), "a1"))
    return rows


def render(row: tuple[str, str, str, str, str, str, str, str], numeric: int) -> str:
    slot, cls, cls_id, vendor, device, vid, did, rev = row
    if numeric == 1:
        return f"{slot} {cls_id}: {vid}:{did} (rev {rev})"
    if numeric >= 2:
        return f"{slot} {cls} [{cls_id}]: {vendor} {device} [{vid}:{did}] (rev {rev})"
    return f"{slot} {cls}: {vendor} {device} (rev {rev})"


def main(argv: list[str]) -> int:
    numeric, kernel, want = 0, False, ""
    args = iter(argv)
    for arg in args:
        if arg in ("-n", "-nn") or (arg.startswith("-") and set(arg[1:]) <= {"n", "k", "v"}):
            numeric += arg.count("n")
            kernel = kernel or "k" in arg
        elif arg == "-d":
            want = next(args, "").lower()
        elif arg.startswith("-d"):
            want = arg[2:].lower()
        else:
            print(f"lspci: Unknown option '{arg}' (see \"lspci --help\")", file=sys.stderr)
            return 2
    try:
        with open(GPUS_JSON) as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        doc = {"gpus": []}
    driver = os.path.exists(DRIVER_MARKER)
    for row in devices(doc):
        vendor, _, device = want.partition(":")
        if (vendor and vendor != row[5]) or (device and device != row[6]):
            continue
        print(render(row, numeric))
        if kernel and row[5] == "10de":
            if driver:
                print("\tKernel driver in use: nvidia")
            print("\tKernel modules: nvidia" if driver else "\tKernel modules: nouveau")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
