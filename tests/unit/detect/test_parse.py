"""detect's parsers against real host outputs (../shared/reference/host-outputs.md)."""

from __future__ import annotations

from coderig_deploy.detect import parse

SMI_NOUNITS = """\
0, NVIDIA GeForce RTX 4090, GPU-6a3f4c55-0b1e-4f0e-8a57-0c7f5b7c2d11, 24564, 00000000:01:00.0, 0x268410DE, 580.95.05
1, NVIDIA GeForce RTX 4090, GPU-1b2c3d4e-0b1e-4f0e-8a57-0c7f5b7c2d12, 24564, 00000000:02:00.0, 0x268410DE, 580.95.05
"""
# Without nounits values carry units; an older Quadro name lacks the NVIDIA prefix; [N/A] fields.
SMI_UNITS = "0, Quadro RTX 8000, [N/A], 46080 MiB, 00000000:3B:00.0, 0x1E3010DE, 550.54.15\n"
SMI_FAILED = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
              "Make sure that the latest NVIDIA driver is installed and running.\n")
SMI_MISMATCH = "Failed to initialize NVML: Driver/library version mismatch\n"
SMI_LIST_LOST = """\
GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-6a3f4c55-0b1e-4f0e-8a57-0c7f5b7c2d11)
Unable to determine the device handle for GPU0000:02:00.0: Unknown Error
"""
LSPCI_N = """\
00:00.0 0600: 8086:1237 (rev 02)
00:02.0 0300: 8086:3e92
01:00.0 0300: 10de:2786 (rev a1)
01:00.1 0403: 10de:22bc (rev a1)
0000:41:00.0 0302: 10de:26b9 (rev a1)
02:00.0 0300: 10de:ffff (rev a1)
"""
SYSFS = """\
0000:00:00.0 0x8086 0x1237 0x060000
0000:01:00.0 0x10de 0x2684 0x030000
0000:01:00.1 0x10de 0x22ba 0x040300
0000:02:00.0 0x10de 0x2204 0x030200
"""
OPEN_MODULE = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build  "
               "(dvs-builder@U16-I3-B03-4-3)  Thu Oct 10 12:29:05 UTC 2024\n")
PROPRIETARY = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:54:40 UTC 2025\n"


def test_nvidia_smi_csv_nounits() -> None:
    gpus = parse.nvidia_smi_csv(SMI_NOUNITS)
    assert [(g.index, g.name, g.memory_mib, g.bus_id, g.device_id, g.driver_version) for g in gpus] == [
        (0, "NVIDIA GeForce RTX 4090", 24564, "0000:01:00.0", "2684", "580.95.05"),
        (1, "NVIDIA GeForce RTX 4090", 24564, "0000:02:00.0", "2684", "580.95.05")]


def test_nvidia_smi_csv_with_units_and_not_available_fields() -> None:
    (gpu,) = parse.nvidia_smi_csv(SMI_UNITS)
    assert (gpu.name, gpu.uuid, gpu.memory_mib, gpu.bus_id, gpu.device_id) == \
        ("Quadro RTX 8000", None, 46080, "0000:3b:00.0", "1e30")


def test_nvidia_smi_errors_give_no_gpus() -> None:
    assert parse.nvidia_smi_csv(SMI_FAILED) == []
    assert parse.nvidia_smi_csv(SMI_MISMATCH) == []


def test_a_card_nvidia_smi_cannot_open() -> None:
    assert parse.lost_gpus(SMI_LIST_LOST) == ["0000:02:00.0"]
    assert parse.lost_gpus("GPU 0: NVIDIA GeForce RTX 4070 (UUID: GPU-x)\n") == []


def test_lspci_n_keeps_nvidia_display_controllers_only() -> None:
    # The Intel iGPU (listed first), the 4070's HDMI audio function (class 0403) are left out;
    # a domain-prefixed 3D controller (L40S) and an id the catalog may not know are kept.
    assert [(d.bus_id, d.device_id) for d in parse.lspci_n(LSPCI_N)] == [
        ("0000:01:00.0", "2786"), ("0000:41:00.0", "26b9"), ("0000:02:00.0", "ffff")]


def test_sysfs_pci() -> None:
    assert [(d.bus_id, d.device_id) for d in parse.sysfs_pci(SYSFS)] == [
        ("0000:01:00.0", "2684"), ("0000:02:00.0", "2204")]


def test_driver_version_of_open_and_proprietary_modules() -> None:
    assert parse.proc_driver_version(OPEN_MODULE) == "565.57.01"
    assert parse.proc_driver_version(PROPRIETARY) == "580.95.05"
    assert parse.proc_driver_version("") is None


def test_meminfo_df_os_release() -> None:
    assert parse.meminfo_mib("MemTotal:       65842308 kB\nMemFree: 1 kB\n") == 64299
    df = ("Filesystem     1024-blocks      Used Available Capacity Mounted on\n"
          "/dev/nvme0n1p2   959786032 412345678 498765432      46% /\n")
    assert parse.df_free_gib(df) == 475.7
    assert parse.df_free_gib("") is None
    assert parse.os_release('PRETTY_NAME="Ubuntu 24.04.1 LTS"\nID=ubuntu\nVERSION_ID="24.04"\n') == \
        "Ubuntu 24.04.1 LTS"
    assert parse.os_release("ID=debian\nVERSION_ID=\"12\"\n") == "debian 12"


def test_ollama_version_and_models() -> None:
    assert parse.ollama_version("ollama version is 0.33.3\n") == "0.33.3"
    assert parse.ollama_version("ollama version is 0.5.7\nWarning: client version is 0.5.4\n") == "0.5.7"
    assert parse.ollama_version("") is None
    tags = '{"models": [{"name": "qwen2.5-coder:14b", "size": 1}, {"model": "coderig/x:16k"}]}'
    assert parse.ollama_models(tags) == ["coderig/x:16k", "qwen2.5-coder:14b"]
    assert parse.ollama_models("") is None
    assert parse.ollama_models('{"models": []}') == []
