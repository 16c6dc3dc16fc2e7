import io
import struct

import pytest

from coderig_deploy.sandbox.ollama_sim import gguf


def test_header_round_trip_keeps_types_and_values() -> None:
    meta = {
        "general.architecture": "qwen2",
        "general.parameter_count": gguf.Typed(gguf.T_UINT64, 14_770_000_000),
        "general.file_type": gguf.Typed(gguf.T_UINT32, 15),
        "qwen2.block_count": 48,
        "qwen2.rope.freq_base": 1_000_000.0,
        "coderig.sim.tied_embeddings": True,
        "tokenizer.ggml.merges": ["a b", "c d"],
    }
    raw = gguf.encode_header(meta)
    back = gguf.read_metadata(io.BytesIO(raw))
    assert back == {**meta, "general.parameter_count": 14_770_000_000, "general.file_type": 15}


def test_header_layout_is_gguf_v3() -> None:
    raw = gguf.encode_header({"general.architecture": "llama"})
    assert raw[:4] == b"GGUF"
    version, tensors, count = struct.unpack("<IQQ", raw[4:24])
    assert (version, tensors, count) == (3, 0, 1)
    assert len(raw) % gguf.ALIGNMENT == 0
    # first key: uint64 length then the bytes, then the value type (8 = string)
    (length,) = struct.unpack("<Q", raw[24:32])
    assert raw[32:32 + length] == b"general.architecture"
    assert struct.unpack("<I", raw[32 + length:36 + length]) == (gguf.T_STRING,)


def test_reader_rejects_non_gguf_and_truncation() -> None:
    with pytest.raises(gguf.GGUFError, match="magic"):
        gguf.read_metadata(io.BytesIO(b"GGML" + bytes(40)))
    raw = gguf.encode_header({"general.name": "x" * 40})
    with pytest.raises(gguf.GGUFError, match="truncated"):
        gguf.read_metadata(io.BytesIO(raw[:40]))


def test_file_type_names_match_llama_ftype() -> None:
    assert gguf.FILE_TYPE_NAMES[15] == "Q4_K_M"
    assert gguf.FILE_TYPE_NAMES[2] == "Q4_0"
    assert gguf.FILE_TYPES["Q8_0"] == 7
