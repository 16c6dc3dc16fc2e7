"""HostFacts from a probe's sections, and the auto rule: which profiles fit, best first."""

from __future__ import annotations

from coderig_deploy.detect import report
from coderig_deploy.detect.choose import candidates, choose
from coderig_deploy.detect.facts import host_facts, unreachable
from coderig_deploy.detect.probe import MARK, sections
from coderig_deploy.profiles import list_profiles, load_profile

PROFILES = [load_profile(name) for name in list_profiles()]
MEMINFO = "MemTotal:       131072000 kB\n"  # 125 GiB: every shipped profile's minimum
DF = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 2000000000 1 1900000000 1% /\n"


def smi(*cards: tuple[str, str, str]) -> str:
    return "".join(f"{i}, {name}, GPU-{i}, {mib}, 00000000:{i + 1:02X}:00.0, 0x{dev}10DE, 580.95.05\n"
                   for i, (name, mib, dev) in enumerate(cards))


RTX4090 = ("NVIDIA GeForce RTX 4090", "24564", "2684")
RTX4070 = ("NVIDIA GeForce RTX 4070", "12282", "2786")


def facts(smi_text: str = "", lspci: str = "", ram: str = MEMINFO, df: str = DF, name: str = "ws1"):  # type: ignore[no-untyped-def]
    return host_facts(name, {"nvidia-smi": smi_text, "lspci": lspci, "meminfo": ram, "df": df,
                             "models-dir": "/srv/ollama"})


def test_sections_split_the_probe_output() -> None:
    out = f"{MARK}nvidia-smi\na\nb\n{MARK}lspci\n{MARK}end\n"
    assert sections(out) == {"nvidia-smi": "a\nb", "lspci": "", "end": ""}


def test_gpus_from_nvidia_smi_with_a_dead_card_on_the_pci_bus() -> None:
    found = facts(smi(RTX4090), lspci="01:00.0 0300: 10de:2684 (rev a1)\n02:00.0 0300: 10de:2684 (rev a1)\n")
    assert [(g.bus_id, g.slug, g.source, g.usable) for g in found.gpus] == [
        ("0000:01:00.0", "rtx-4090", "nvidia-smi", True), ("0000:02:00.0", "rtx-4090", "lspci", False)]
    assert found.driver_version == "580.95.05" and found.usable_by_slug() == {"rtx-4090": 1}


def test_two_cards_of_one_name_are_told_apart_by_their_memory() -> None:
    # Both print "NVIDIA GeForce RTX 3080"; the 12 GB card must not be planned with 10 GB.
    found = facts(smi(("NVIDIA GeForce RTX 3080", "10240", "2206"), ("NVIDIA GeForce RTX 3080", "12288", "220a")))
    assert [(g.slug, g.vram_mib) for g in found.gpus] == [("rtx-3080-10gb", 10240), ("rtx-3080-12gb", 12288)]


def test_a_card_only_nvidia_smi_L_names_is_not_usable() -> None:
    found = host_facts("ws1", {"nvidia-smi": smi(RTX4090),
                               "nvidia-smi-list": "Unable to determine the device handle for GPU0000:02:00.0: "
                                                  "Unknown Error\n"})
    assert [(g.bus_id, g.usable) for g in found.gpus] == [("0000:01:00.0", True), ("0000:02:00.0", False)]


def test_without_a_driver_pci_ids_map_through_the_catalog_and_unknown_ids_are_not_guessed() -> None:
    found = facts(lspci="00:02.0 0300: 8086:3e92\n01:00.0 0300: 10de:2786 (rev a1)\n02:00.0 0300: 10de:ffff\n")
    assert found.driver_version is None
    assert [(g.slug, g.vram_mib, g.usable) for g in found.gpus] == [("rtx-4070", 12282, True), (None, None, True)]
    assert found.unknown_pci_ids == ["10de:ffff"]
    choice = choose(found, PROFILES)
    assert choice.profile == "budget-4070" and "unknown PCI id 10de:ffff" in choice.reason


def test_a_pre_turing_card_is_named_as_such_not_as_an_unknown_id() -> None:
    # A Tesla P40 (Pascal, 1b38) with its driver, and a V100 (Volta, 1db6) seen only on the bus: neither is planned,
    # and the reason says why instead of calling them unknown; an id of Turing's range or later stays unknown.
    found = facts(smi(("Tesla P40", "22919", "1b38")),
                  lspci="01:00.0 0300: 10de:1b38 (rev a1)\n02:00.0 0302: 10de:1db6 (rev a1)\n03:00.0 0300: 10de:2fff\n")
    assert [g.slug for g in found.gpus] == [None, None, None]
    assert found.pre_turing_pci_ids == ["10de:1b38", "10de:1db6"]
    choice = choose(found, PROFILES)
    assert choice.profile is None
    assert "pre-Turing cards 10de:1b38, 10de:1db6 (Pascal, Volta or older)" in choice.reason
    assert "unknown PCI id 10de:2fff" in choice.reason and "10de:1b38 (not in" not in choice.reason
    text = "\n".join(report.host_lines(found, choice))
    assert "Tesla P40 (pre-Turing, not in the catalog" in text and max(len(line) for line in text.splitlines()) <= 80
    assert "unknown PCI ids (not guessed): 10de:2fff\n" in text + "\n" and "not guessed): 10de:1b38" not in text
    [doc] = report.document([(found, choice)])
    assert doc["unknown_pci_ids"] == ["10de:2fff"] and doc["pre_turing_pci_ids"] == ["10de:1b38", "10de:1db6"]


def test_a_cards_other_pci_ids_map_to_it_too() -> None:
    # A fresh host has no driver yet: lspci's ids are all detection has. An RTX 3070 Lite Hash Rate (2488) and an
    # RTX 3060 Ti on GA103 (2414) are the same cards as their first ids.
    found = facts(lspci="01:00.0 0300: 10de:2488 (rev a1)\n02:00.0 0300: 10de:2414 (rev a1)\n")
    assert [g.slug for g in found.gpus] == ["rtx-3070", "rtx-3060-ti"] and not found.unknown_pci_ids


def test_sysfs_is_read_when_lspci_is_missing() -> None:
    found = host_facts("ws1", {"sysfs": "0000:01:00.0 0x10de 0x2684 0x030000\n", "meminfo": MEMINFO})
    assert [(g.slug, g.source) for g in found.gpus] == [("rtx-4090", "sysfs")]


def test_auto_picks_by_gpus_used_then_vram_then_speed() -> None:
    dual = candidates(facts(smi(RTX4090, RTX4090)), PROFILES)
    assert [c.profile for c in dual] == ["dual-4090", "midrange-4090", "deepseek-33b-4090"]
    assert dual[1].vram_mib > dual[2].vram_mib  # midrange's 32B at 24K plans more than deepseek's 33B at 16K
    assert choose(facts(smi(RTX4090)), PROFILES).profile == "midrange-4090"
    assert choose(facts(smi(RTX4070)), PROFILES).profile == "budget-4070"


def test_the_reason_states_the_rule_and_the_dead_card() -> None:
    found = facts(smi(RTX4090), lspci="01:00.0 0300: 10de:2684\n02:00.0 0300: 10de:2684\n")
    choice = choose(found, PROFILES)
    assert choice.profile == "midrange-4090"
    assert choice.reason.startswith("auto: 1x rtx-4090; 1 more on the PCI bus not seen by the driver "
                                    "(0000:02:00.0 rtx-4090); midrange-4090 uses 1 GPU(s)")
    assert "most GPUs used, then most planned VRAM, then highest expected tok/s" in choice.reason


def test_no_profile_fits() -> None:
    choice = choose(facts(smi(("NVIDIA GeForce RTX 3060", "12288", "2504"))), PROFILES)
    assert choice.profile is None and choice.reason.startswith("no profile fits this host: ")
    # The reason names the command that writes a profile for the host's cards (one GPU model per profile).
    assert choice.reason.endswith("(`coderig-deploy recommend --gpu rtx-3060-12gb --write-profile FILE` writes one)")
    laptop = choose(facts(smi(("NVIDIA GeForce RTX 4090 Laptop GPU", "16376", "2757"),
                              ("NVIDIA GeForce RTX 4090 Laptop GPU", "16376", "2757"))), PROFILES)
    assert "recommend --gpu rtx-4090-laptop --gpu rtx-4090-laptop --write-profile FILE" in laptop.reason
    mixed = choose(facts(smi(("NVIDIA GeForce RTX 3060", "12288", "2504"), ("Tesla T4", "15360", "1eb8"))), PROFILES)
    assert mixed.profile is None and "recommend" not in mixed.reason
    assert choose(unreachable("ws9", "cannot SSH"), PROFILES).reason == "not detected: cannot SSH"


def test_ram_short_excludes_when_refusing_and_warns_in_the_sandbox() -> None:
    small = facts(smi(RTX4090, RTX4090), ram="MemTotal: 8000000 kB\n")
    assert candidates(small, PROFILES, "refuse") == []
    warned = choose(small, PROFILES, "warn")
    assert warned.profile == "dual-4090" and "warning: RAM 8 GiB <" in warned.reason


def test_laptop_gpus_are_detected_by_name_and_by_pci_id() -> None:
    # nvidia-smi names a laptop part "... Laptop GPU" (memory.total as real laptops print it); the RTX 3080 Laptop's
    # 8 and 16 GB parts share name and ids, so memory.total decides. Without a driver, the id alone.
    found = facts(smi(("NVIDIA GeForce RTX 4090 Laptop GPU", "16376", "2757"),
                      ("NVIDIA GeForce RTX 3080 Laptop GPU", "16384", "249c")))
    assert [(g.slug, g.vram_mib) for g in found.gpus] == [("rtx-4090-laptop", 16376), ("rtx-3080-laptop-16gb", 16384)]
    found = facts(lspci="01:00.0 0300: 10de:2c58 (rev a1)\n")
    assert [(g.slug, g.vram_mib) for g in found.gpus] == [("rtx-5090-laptop", 24463)]
    # The desktop card of the same number is not the laptop one.
    assert facts(smi(("NVIDIA GeForce RTX 4090", "24564", "2684"))).gpus[0].slug == "rtx-4090"
