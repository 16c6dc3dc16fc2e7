"""The probe's GGUF: llama.cpp's tensor names, shapes and Q4_K_M type mix, read back
with the `gguf` package (llama.cpp's own Python reader) as an independent check."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

from coderig_deploy.catalog import load_catalog
from coderig_deploy.probe import gguf as writer
from coderig_deploy.probe.remote import shape_of
from coderig_deploy.probe.tensors import Shape, tensors

TINY = Shape(arch="qwen2", layers=3, heads=4, kv_heads=2, hidden=256, head_dim=64, ffn=512, vocab=1000,
             trained_ctx=4096, tied_embeddings=False)


def _shape(tag: str) -> Shape:
    return shape_of(load_catalog().model(tag))


def _types(tag: str) -> Counter[str]:
    choice = load_catalog().model(tag)
    return Counter(t.ggml_type for t in tensors(_shape(tag), choice.quant.quant))


# Counts llama.cpp's loader prints for the published files ("llama_model_loader: - type q4_K: 169 tensors").
@pytest.mark.parametrize(("tag", "expected"), [
    ("qwen2.5-coder:7b-instruct-q4_K_M", {"F32": 141, "Q4_K": 169, "Q6_K": 29}),
    ("llama3.1:8b-instruct-q4_K_M", {"F32": 66, "Q4_K": 193, "Q6_K": 33}),
])
def test_q4_k_m_type_mix_matches_llama_cpp(tag: str, expected: dict[str, int]) -> None:
    assert dict(_types(tag)) == expected


def test_tied_embeddings_put_the_token_embedding_at_q6_k() -> None:
    found = {t.name: t for t in tensors(_shape("qwen2.5-coder:1.5b"), "Q4_K_M")}
    assert "output.weight" not in found
    assert found["token_embd.weight"].ggml_type == "Q6_K"
    assert found["token_embd.weight"].dims == (1536, 151936)


def test_use_more_bits_rule_on_attn_v_and_ffn_down() -> None:
    found = {t.name: t.ggml_type for t in tensors(_shape("qwen2.5-coder:7b"), "Q4_K_M")}
    # 28 layers: first 3, last 4, and every third from layer 5 get Q6_K (llama-quant.cpp use_more_bits)
    more = [i for i in range(28) if found[f"blk.{i}.attn_v.weight"] == "Q6_K"]
    assert more == [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]
    assert [i for i in range(28) if found[f"blk.{i}.ffn_down.weight"] == "Q6_K"] == more
    assert found["blk.3.attn_q.weight"] == "Q4_K" and found["output.weight"] == "Q6_K"


@pytest.mark.parametrize("tag", ["qwen2.5-coder:32b-instruct-q4_K_M", "llama3.1:70b-instruct-q4_K_M",
                                 "starcoder2:15b-q8_0", "deepseek-coder:33b-instruct-q4_0",
                                 "qwen3-coder:30b-a3b-q4_K_M", "qwen2.5-coder:3b-instruct-q6_K"])
def test_file_size_within_one_percent_of_the_published_file(tag: str) -> None:
    choice = load_catalog().model(tag)
    assert choice.size_source == "published", "compare against a published size only"
    size = writer.planned_size(_shape(tag), choice.quant.quant)
    assert abs(size - choice.file_bytes) / choice.file_bytes < 0.01, (size, choice.file_bytes)


def test_written_file_reads_back_with_the_gguf_package(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    size, digest = writer.write_file(path, TINY, "Q4_K_M", "tiny")
    assert size == path.stat().st_size == writer.planned_size(TINY, "Q4_K_M", "tiny")
    reader = GGUFReader(str(path))
    expected = tensors(TINY, "Q4_K_M")
    assert [t.name for t in reader.tensors] == [t.name for t in expected]
    assert [t.tensor_type.name for t in reader.tensors] == [t.ggml_type for t in expected]
    assert [tuple(int(d) for d in t.shape) for t in reader.tensors] == [t.dims for t in expected]
    assert bytes(reader.fields["general.architecture"].parts[-1]).decode() == "qwen2"
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == TINY.vocab
    for t in reader.tensors:
        if t.tensor_type.name != "F32":
            values = dequantize(t.data, t.tensor_type)
            assert np.isfinite(values).all() and 0 < np.abs(values).max() < 100, t.name


def test_a_real_architecture_header_parses(tmp_path: Path) -> None:
    """deepseek-coder 6.7B's full header, the data left as a sparse hole (no 4 GB written)."""
    shape = _shape("deepseek-coder:6.7b-instruct-q4_K_M")
    path = tmp_path / "sparse.gguf"
    path.write_bytes(writer.encode_header(writer.metadata(shape, "Q4_K_M", "x"), tensors(shape, "Q4_K_M")))
    os.truncate(path, writer.planned_size(shape, "Q4_K_M", "x"))
    reader = GGUFReader(str(path))
    assert len(reader.tensors) == 291  # token_embd, 32 x 9 per layer, output_norm, output
    assert reader.tensors[-1].name == "output.weight" and reader.tensors[-1].tensor_type.name == "Q6_K"
    assert int(reader.fields["llama.block_count"].parts[-1][0]) == 32
    assert int(reader.tensors[-1].data_offset) + int(reader.tensors[-1].n_bytes) == path.stat().st_size


def test_streamed_digest_is_the_files_sha256(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "tiny.gguf"
    _, digest = writer.write_file(path, TINY, "Q8_0", "tiny", seed=3)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    with pytest.raises(ValueError, match="not one the probe can write"):
        writer.write_file(path, TINY, "Q3_K_M", "tiny")
    assert not path.exists()


# GPT-2's pre-tokenizer split, which llama.cpp's "default" pre-tokenizer starts from (ASCII classes for \p{L}, \p{N}).
_WORDS = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def _llama_cpp_bpe(text: str, tokens: list[str], merges: list[str]) -> list[int]:
    """llama.cpp's byte-level BPE (llm_tokenizer_bpe_session), word by word: GPT-2's byte-to-unicode symbols, the
    lowest-ranked merge first; a final symbol that is no token falls back to its UTF-8 bytes one by one, each
    looked up as a one-byte string, and a byte that is no token is dropped."""
    table = writer._byte_tokens()
    rank = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    ids = {t: i for i, t in enumerate(tokens)}
    out: list[int] = []
    for word in _WORDS.findall(text):
        symbols = [table[b] for b in word.encode()]
        while True:
            ranked = [(rank[p], i) for i, p in enumerate(zip(symbols, symbols[1:])) if p in rank]
            if not ranked:
                break
            _, i = min(ranked)
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        for s in symbols:
            if s in ids:
                out.append(ids[s])
            else:  # one byte as a string: valid UTF-8 only below 0x80
                out += [ids[chr(b)] for b in s.encode() if b < 0x80 and chr(b) in ids]
    return out


# A vocabulary of 1000 holds only pairs ending in bytes 0-2, which the text has none of.
@pytest.mark.parametrize(("vocab", "merges_apply"), [(1000, False), (32256, True), (152064, True)])
def test_the_synthetic_tokenizer_loses_no_text(vocab: int, merges_apply: bool) -> None:
    """Found by loading a probe file in llama.cpp (benchmarks/probe_llama_cpp.py): merges whose result was no
    token made it drop every space ('Ġ' is two bytes in UTF-8), so "def fibonacci" came back "deffibonacci"."""
    meta = writer._tokenizer(vocab)
    tokens, merges = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.merges"]
    assert len(tokens) == len(set(tokens)) == vocab
    vocabulary = set(tokens)
    pair_merges = [m for m in merges if not m.startswith("tok")]
    assert pair_merges and all(m.replace(" ", "", 1) in vocabulary for m in pair_merges)
    text = "def fibonacci(n):\n\treturn n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)  # é"
    ids = _llama_cpp_bpe(text, tokens, merges)
    back = {c: b for b, c in enumerate(writer._byte_tokens())}
    assert bytes(back[c] for i in ids for c in tokens[i]).decode() == text
    assert (len(ids) < len(text.encode())) == merges_apply  # pairs of bytes merged
    bos, eos = meta["tokenizer.ggml.bos_token_id"].value, meta["tokenizer.ggml.eos_token_id"].value
    assert {bos, eos}.isdisjoint(ids)
    # control tokens (3) as converted tokenizers mark them, the EOS under a text llama.cpp ends generation at
    # (else it warns "special_eos_id is not in special_eog_ids"); every other token normal (1)
    types = [t.value for t in meta["tokenizer.ggml.token_type"]]
    assert types[bos] == types[eos] == 3 and types.count(1) == vocab - 2
    assert tokens[eos] == "<|endoftext|>"


def test_a_vocabulary_too_small_for_its_byte_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match="no room for the 256 byte tokens"):
        writer._tokenizer(257)
