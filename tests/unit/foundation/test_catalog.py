"""Tag resolution and sizes."""

import re

import pytest
from pydantic import ValidationError

from coderig_deploy.catalog import GB, GIB, EngineSpec, load_catalog
from coderig_deploy.errors import UnknownNameError
from coderig_deploy.recommend import recommend

CAT = load_catalog()


@pytest.mark.parametrize(
    "tag, key, quant, canonical",
    [
        ("qwen2.5-coder:32b", "qwen2.5-coder-32b", "Q4_K_M", "qwen2.5-coder:32b-instruct-q4_K_M"),
        ("qwen2.5-coder:32b-instruct-q4_K_M", "qwen2.5-coder-32b", "Q4_K_M", "qwen2.5-coder:32b-instruct-q4_K_M"),
        ("llama3.1:70b-instruct-q4_0", "llama3.1-70b", "Q4_0", "llama3.1:70b-instruct-q4_0"),
        ("llama3.1:8b-instruct-fp16", "llama3.1-8b", "F16", "llama3.1:8b-instruct-fp16"),
        ("starcoder2:15b-q4_K_M", "starcoder2-15b", "Q4_K_M", "starcoder2:15b-q4_K_M"),
        ("starcoder2:3b", "starcoder2-3b", "Q4_0", "starcoder2:3b-q4_0"),
        ("deepseek-coder:6.7b", "deepseek-coder-6.7b", "Q4_0", "deepseek-coder:6.7b-instruct-q4_0"),
        ("qwen3-coder:30b", "qwen3-coder-30b", "Q4_K_M", "qwen3-coder:30b-a3b-q4_K_M"),
        # a base model keeps its own tag (its instruct twin's tensors, another model)
        ("qwen2.5-coder:7b-base-q4_K_M", "qwen2.5-coder-7b", "Q4_K_M", "qwen2.5-coder:7b-base-q4_K_M"),
        ("qwen2.5-coder:7b-base", "qwen2.5-coder-7b", "Q4_K_M", "qwen2.5-coder:7b-base-q4_K_M"),
        ("qwen2.5:14b-instruct-q6_K", "qwen2.5-14b", "Q6_K", "qwen2.5:14b-instruct-q6_K"),
    ],
)
def test_tags_resolve(tag, key, quant, canonical):
    choice = CAT.model(tag)
    assert (choice.model.key, choice.quant.quant, choice.canonical_tag) == (key, quant, canonical)


def test_published_sizes_are_used_with_their_units():
    assert CAT.model("qwen2.5-coder:32b").file_bytes == int(19.9 * GB)
    assert CAT.model("llama3.1:70b").file_bytes == int(39.60 * GIB)
    assert CAT.model("qwen2.5-coder:32b").size_source == "published"


def test_unpublished_sizes_are_computed_from_bits_per_weight():
    choice = CAT.model("qwen2.5-coder:7b-instruct-q6_K")
    assert choice.size_source.startswith("computed")
    assert choice.file_bytes == int(7.62e9 * 6.5625 / 8)


def test_every_required_model_and_quant_is_plannable():
    required = ["qwen2.5-coder-1.5b", "qwen2.5-coder-3b", "qwen2.5-coder-7b", "qwen2.5-coder-14b",
                "qwen2.5-coder-32b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "llama3.1-8b", "llama3.1-70b",
                "deepseek-coder-6.7b", "deepseek-coder-33b", "starcoder2-3b", "starcoder2-7b",
                "starcoder2-15b", "qwen3-coder-30b"]
    assert set(required) <= set(CAT.models)
    assert set(CAT.quants) == {"Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "F16"}
    tags = CAT.model_tags()
    assert len(tags) == len(CAT.models) * 6
    for tag in tags:
        assert CAT.model(tag).file_bytes > 0


@pytest.mark.parametrize(
    "tag, message",
    [
        ("qwen2.5-codr:32b", "Did you mean qwen2.5-coder"),
        ("qwen2.5-coder:33b", "Known: 1.5b, 3b, 7b, 14b, 32b"),
        ("qwen2.5-coder:32b-instruct-q3_K_S", "unknown quantization"),
        ("qwen2.5-coder:latest", "cannot read the tag"),
    ],
)
def test_bad_tags_explain_themselves(tag, message):
    with pytest.raises(UnknownNameError, match=message):
        CAT.model(tag)


def test_unknown_gpu_suggests():
    with pytest.raises(UnknownNameError, match="Did you mean rtx-4090"):
        CAT.gpu("rtx4090")


def test_gpu_by_nvidia_smi_name():
    assert CAT.gpu_by_name("NVIDIA GeForce RTX 4090").slug == "rtx-4090"
    assert CAT.gpu_by_name("GeForce RTX 4090").slug == "rtx-4090"  # older drivers: no prefix
    # Tesla and Quadro cards keep their names without the prefix even on current drivers.
    assert CAT.gpu_by_name("Tesla T4").slug == "t4" and CAT.gpu_by_name("Quadro RTX 8000", 49152).slug == "quadro-rtx-8000"
    assert CAT.gpu_by_name("Tesla P40") is None  # Pascal: not in the catalog
    # The H200's PCIe card is its own entry: 600 W and a lower clock than the 700 W SXM module.
    nvl = CAT.gpu_by_name("NVIDIA H200 NVL")
    assert nvl.slug == "h200-nvl" and (nvl.board_power_w, nvl.pci_device_id) == (600, "233b")
    # Grace Hopper: the GH200's GPU is planned on its 96 GB of HBM3 (deviceQuery: 132 SMs, 60 MiB of L2). Its decode is
    # the H100 SXM's and H200's, not in their bandwidths' order (3.35, 4.0, 4.8 TB/s): on HBM a current build's decode
    # is bound by bytes in flight (132 SMs over a 348-354 ns latency, fit.decode_bandwidth); its prefill is theirs too.
    gh = CAT.gpu_by_name("NVIDIA GH200 480GB")
    assert (gh.slug, gh.vram_mib, gh.pci_device_id, gh.sm_count, gh.architecture) == ("gh200", 97871, "2342", 132,
                                                                                        "hopper")
    from coderig_deploy.planner import make_plan

    h100, gh200, h200 = (make_plan("llama3.1:70b", [g], 16384) for g in ("h100-sxm", "gh200", "h200"))
    assert gh200.decode_tok_s == pytest.approx(h100.decode_tok_s, rel=0.02)
    assert gh200.decode_tok_s == pytest.approx(h200.decode_tok_s, rel=0.02)
    # under half its roofline (43 %)
    assert gh200.decode_tok_s * gh200.weights_mib * (1 << 20) / (gh.bandwidth_gbs * 1e9) < 0.5
    assert gh200.prefill_tok_s == pytest.approx(h100.prefill_tok_s, rel=0.05)


@pytest.mark.parametrize("name, memory_mib, slug", [
    ("NVIDIA GeForce RTX 3080", 10240, "rtx-3080-10gb"),
    ("NVIDIA GeForce RTX 3080", 12288, "rtx-3080-12gb"),
    ("NVIDIA GeForce RTX 5060 Ti", 8151, "rtx-5060-ti-8gb"),
    ("NVIDIA GeForce RTX 5060 Ti", 16311, "rtx-5060-ti-16gb"),
    ("NVIDIA GeForce RTX 4060 Ti", 16380, "rtx-4060-ti-16gb"),
    ("NVIDIA GeForce RTX 3050", 6144, "rtx-3050-6gb"),
    ("NVIDIA GeForce RTX 3050", 8192, "rtx-3050"),
    ("NVIDIA GeForce RTX 3060", 8192, "rtx-3060-8gb"),
    ("NVIDIA GeForce RTX 3060", 12288, "rtx-3060-12gb"),
])
def test_cards_that_share_a_name_are_told_apart_by_memory(name, memory_mib, slug):
    assert CAT.gpu_by_name(name, memory_mib).slug == slug


def test_data_center_cards_carry_the_memory_their_ecc_leaves():
    # nvidia-smi's memory.total on these cards (published captures), not the marketed size: ECC takes its share.
    assert {s: CAT.gpu(s).vram_mib for s in ("l40s", "l4", "a10", "h100-nvl")} == {
        "l40s": 46068, "l4": 23034, "a10": 23028, "h100-nvl": 95830}


def test_the_blackwell_workstation_line_is_in_the_catalog():
    line = {s: (CAT.gpu(s).sm_count, CAT.gpu(s).bandwidth_gbs, CAT.gpu(s).board_power_w)
            for s in ("rtx-pro-4000", "rtx-pro-4500", "rtx-pro-5000", "rtx-pro-6000-maxq", "rtx-pro-6000")}
    assert line == {"rtx-pro-4000": (70, 672, 140), "rtx-pro-4500": (82, 896, 200), "rtx-pro-5000": (110, 1344, 300),
                    "rtx-pro-6000-maxq": (188, 1792, 300), "rtx-pro-6000": (188, 1792, 600)}


def test_cards_added_from_the_scoreboard_and_the_70_w_class_are_in_the_catalog():
    # (SMs, GB/s, W, nvidia-smi memory.total where a capture was found): gpus.tsv names each source.
    cards = {s: (CAT.gpu(s).sm_count, CAT.gpu(s).bandwidth_gbs, CAT.gpu(s).board_power_w, CAT.gpu(s).vram_mib)
             for s in ("rtx-4090-d", "a30", "rtx-5050", "rtx-a2000", "rtx-a2000-12gb", "rtx-pro-2000",
                       "rtx-pro-4000-sff")}
    assert cards == {"rtx-4090-d": (114, 1008, 425, 24564), "a30": (56, 933, 165, 24576),
                     "rtx-5050": (20, 320, 130, 8151), "rtx-a2000": (26, 288, 70, 6144),
                     "rtx-a2000-12gb": (26, 288, 70, 12282), "rtx-pro-2000": (34, 288, 70, 16384),
                     "rtx-pro-4000-sff": (70, 432, 70, 24576)}
    # The A2000's two sizes have names of their own; the 4090 D is not the 4090.
    assert CAT.gpu_by_name("NVIDIA RTX A2000 12GB").slug == "rtx-a2000-12gb"
    assert CAT.gpu_by_name("NVIDIA GeForce RTX 4090 D").slug == "rtx-4090-d"


@pytest.mark.parametrize("slug", ["v100", "tesla-p40", "p100", "gtx-1080-ti", "titan-xp", "quadro-p6000",
                                  "v100-sxm2-32gb"])
def test_a_pre_turing_slug_is_told_why_it_is_missing_not_offered_a_near_miss(slug):
    # "tesla-p40" is two letters from "l40": suggesting an Ada card for a Pascal one would mislead.
    with pytest.raises(UnknownNameError, match="older than Turing") as err:
        CAT.gpu(slug)
    assert "Did you mean" not in str(err.value)
    with pytest.raises(UnknownNameError, match="Did you mean rtx-4090"):
        CAT.gpu("rtx-4090ti")


def test_the_entry_ampere_cards_are_in_the_catalog():
    # (SMs, GB/s, W, memory.total): the RTX 3050 family, the 8 GB RTX 3060, Ampere's 2024 workstation entry cards and
    # the A2 (gpus.tsv names each source).
    cards = {s: (CAT.gpu(s).sm_count, CAT.gpu(s).bandwidth_gbs, CAT.gpu(s).board_power_w, CAT.gpu(s).vram_mib)
             for s in ("rtx-3050", "rtx-3050-6gb", "rtx-3060-8gb", "rtx-a400", "rtx-a1000", "a2", "rtx-3050-laptop",
                       "rtx-3050-ti-laptop")}
    assert cards == {"rtx-3050": (20, 224, 130, 8192), "rtx-3050-6gb": (18, 168, 70, 6144),
                     "rtx-3060-8gb": (28, 240, 170, 8192), "rtx-a400": (6, 96, 50, 4094),
                     "rtx-a1000": (18, 192, 50, 8188), "a2": (10, 200, 60, 15356),
                     "rtx-3050-laptop": (16, 192, 95, 4096), "rtx-3050-ti-laptop": (20, 192, 95, 4096)}
    assert CAT.gpu_by_name("NVIDIA RTX A400").slug == "rtx-a400" and CAT.gpu_by_name("NVIDIA A2").slug == "a2"
    assert CAT.gpu_by_name("NVIDIA GeForce RTX 3050 Ti Laptop GPU").slug == "rtx-3050-ti-laptop"
    assert CAT.gpu("rtx-3050-laptop").power_label == "35-95"
    # A 4 GB card's best chat model is a 3B, and it still gets a FIM model for autocomplete.
    assert recommend(["rtx-a400"]).choices[0].params_b <= 4
    assert recommend(["rtx-a400"], "autocomplete").choices[0].tag.startswith("starcoder2:3b")


@pytest.mark.parametrize("field, value", [("kq_precision", "f8"), ("prefill_path", "cutlass")])
def test_an_engine_row_with_an_unknown_kernel_choice_is_refused(field, value):
    # fit.py looks these up (SCORE_BYTES_FA_OFF, the MMQ path): a typo in engines.tsv fails at load, by name.
    row = {**load_catalog().engines["ollama"].model_dump(), field: value}
    with pytest.raises(ValidationError, match=field):
        EngineSpec.model_validate(row)


def _pci_names() -> dict[str, str]:
    from coderig_deploy.catalog import DATA_DIR

    rows = (line.split("\t") for line in (DATA_DIR / "gpu_pci_names.tsv").read_text().splitlines()
            if line and not line.startswith(("#", "pci_device_id")))
    return {device: name for device, name in rows}


def test_every_pci_id_names_its_card_in_the_pci_id_repository():
    # Each id of gpus.tsv (first and other ids) is listed with the name pci.ids gives it, and that name is the card's:
    # an id copied onto the wrong row would make detection on a host without a driver pick the wrong card.
    def words(text: str) -> set[str]:
        return set(re.findall(r"[a-z0-9]+", text.lower()))

    # nvidia-smi's name and pci.ids' differ in form only ("A100-PCIE-40GB" / "GA100 [A100 PCIe 40GB]"), except here:
    other_name = {"h100-sxm": "H100 SXM5 80GB",  # nvidia-smi: "NVIDIA H100 80GB HBM3"
                  "h100-nvl": "H100L 94GB"}  # nvidia-smi: "NVIDIA H100 NVL"
    names, owner = _pci_names(), {}
    for gpu in load_catalog().gpus.values():
        model = other_name.get(gpu.slug, gpu.name.removeprefix("NVIDIA ").removeprefix("GeForce "))
        # A laptop part: nvidia-smi says "... Laptop GPU", pci.ids "... Laptop GPU" or "... Max-Q / Mobile".
        laptop = model.endswith(" Laptop GPU")
        for device in gpu.pci_device_ids:
            assert device not in owner, f"{device} is both {owner[device]} and {gpu.slug}"
            owner[device] = gpu.slug
            assert words(model.removesuffix(" Laptop GPU")) <= words(names[device]), (gpu.slug, device, names[device])
            assert laptop == bool({"laptop", "mobile"} & words(names[device])), (gpu.slug, device, names[device])
    assert set(names) == set(owner)  # no name kept for an id no card has
    blank = {g.slug for g in load_catalog().gpus.values() if not g.pci_device_ids}
    # These share an id with a smaller card, which gets it (the smaller memory): 2d04, the RTX 3080 Laptop's 249c/24dc,
    # the Quadro RTX 6000/8000's 1e30/1e78.
    assert blank == {"rtx-5060-ti-16gb", "rtx-3080-laptop-16gb", "quadro-rtx-8000"}
    assert load_catalog().gpu("rtx-3060-ti").pci_device_ids == ("2486", "2489", "2414", "24c9", "248e")


def test_laptop_gpus_carry_the_power_range_their_makers_choose_from():
    # (SMs, GB/s, lowest and highest power limit, memory.total): gpus.tsv and gpu_power_range.tsv name the sources.
    cards = {s: (CAT.gpu(s).sm_count, CAT.gpu(s).bandwidth_gbs, CAT.gpu(s).board_power_min_w, CAT.gpu(s).board_power_w,
                 CAT.gpu(s).vram_mib) for s in ("rtx-4060-laptop", "rtx-4090-laptop", "rtx-5090-laptop")}
    assert cards == {"rtx-4060-laptop": (24, 256, 35, 140, 8188), "rtx-4090-laptop": (76, 576, 80, 175, 16376),
                     "rtx-5090-laptop": (82, 896, 95, 175, 24463)}
    laptops = [g for g in CAT.gpus.values() if "Laptop GPU" in g.name]
    assert len(laptops) == 22 and all(0 < g.board_power_min_w < g.board_power_w for g in laptops)
    # Every other card has one limit.
    assert all(g.board_power_min_w == 0 for g in CAT.gpus.values() if "Laptop GPU" not in g.name)
