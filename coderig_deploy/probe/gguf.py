"""A GGUF v3 file with a model's exact tensors and random weights, streamed to disk.

Layout (ggml docs/gguf.md): header (magic, version, tensor count, metadata count),
metadata key/values, tensor infos (name, dims, ggml type, offset), padding to
`general.alignment` (32), then each tensor's data at an aligned offset. The tensors
and their types come from `tensors.py`; the weights are random quantized blocks whose
scales are small finite half floats, so llama.cpp computes (garbage) at full speed
and never meets NaN. The tokenizer is synthetic: as many tokens as the model's
vocabulary, a byte-level base and byte-pair merges (text tokenizes into pairs of bytes),
close to a real tokenizer's bytes.
Stdlib only: this module runs on the probed host.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from coderig_deploy.probe.tensors import Shape, Tensor, tensors
from coderig_deploy.sandbox.ollama_sim.gguf import (ALIGNMENT, BLOCKS, FILE_TYPES, GGML_TYPES, MAGIC, T_FLOAT32, T_INT32, T_UINT32,
                                                    VERSION, Typed, _guess_type, _pack_string, _pack_value)

CHUNK_BYTES = 4 << 20
# Byte offsets of the half-float scale fields inside one block (ggml-common.h block_* structs).
_SCALE_OFFSETS = {"Q4_0": (0,), "Q4_1": (0, 2), "Q5_0": (0,), "Q5_1": (0, 2), "Q8_0": (0,),
                  "Q2_K": (80, 82), "Q3_K": (108,), "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}
_SMALL_HALF = b"\x00\x14"  # 2**-10 as IEEE half: finite, small
# rope.freq_base and norm epsilon change no shape, memory or speed: one value for every model.
_ROPE_BASE = 1_000_000.0
_NORM_EPS = 1e-6
TOKENIZER_PRE = "default"  # a pre-tokenizer every llama.cpp build knows
# llama.cpp takes a token of this text for an end of generation (llama-vocab.cpp, special_eog_ids); an EOS of
# another text makes it warn "special_eos_id is not in special_eog_ids".
EOS_TEXT = "<|endoftext|>"

Progress = Callable[[int], None]


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode table: the 256 base tokens of a byte-level BPE vocabulary."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    extra = [b for b in range(256) if b not in keep]
    mapping = dict(zip(keep, keep)) | {b: 256 + i for i, b in enumerate(extra)}
    return [chr(mapping[b]) for b in range(256)]


def metadata(shape: Shape, ftype: str, name: str) -> dict[str, Any]:
    """The key/values of the file, as convert_hf_to_gguf.py and llama-quantize write them."""
    a = shape.arch
    eps_key = f"{a}.attention.layer_norm_epsilon" if a == "starcoder2" else f"{a}.attention.layer_norm_rms_epsilon"
    meta: dict[str, Any] = {
        "general.architecture": a,
        "general.type": "model",
        "general.name": name,
        f"{a}.block_count": shape.layers,
        f"{a}.context_length": shape.trained_ctx,
        f"{a}.embedding_length": shape.hidden,
        f"{a}.feed_forward_length": shape.ffn,
        f"{a}.attention.head_count": shape.heads,
        f"{a}.attention.head_count_kv": shape.kv_heads,
        f"{a}.attention.key_length": shape.head_dim,
        f"{a}.attention.value_length": shape.head_dim,
        f"{a}.rope.freq_base": Typed(T_FLOAT32, _ROPE_BASE),
        eps_key: Typed(T_FLOAT32, _NORM_EPS),
        "general.file_type": Typed(T_UINT32, FILE_TYPES[ftype]),
        "general.quantization_version": Typed(T_UINT32, 2),
    }
    if shape.experts:
        meta |= {f"{a}.expert_count": shape.experts, f"{a}.expert_used_count": shape.experts_used,
                 f"{a}.expert_feed_forward_length": shape.ffn}
    return meta | _tokenizer(shape.vocab)


def _tokenizer(vocab: int) -> dict[str, Any]:
    """Byte tokens, then one token per pair of bytes with the merge that makes it (as many as the vocabulary
    holds, first bytes varying fastest), then fillers up to the vocabulary's size; the last two are BOS and EOS,
    control tokens, the EOS under a text llama.cpp takes for an end of generation.
    Every merge text can reach makes a token of the vocabulary: a merge whose result is missing makes llama.cpp
    fall back to the symbol's single bytes, and it drops those that are no token (a space's 'Ġ' is two bytes in
    UTF-8), so text would lose characters. The fillers' merges ("tok000001 tok000002") join names no text
    produces, there only so that a vocabulary has about as many merges as a real one."""
    if vocab < 256 + 2:
        raise ValueError(f"a vocabulary of {vocab} tokens has no room for the 256 byte tokens, BOS and EOS")
    base = _byte_tokens()
    pairs = min(256 * 256, vocab - 256 - 2)
    tokens = base + [base[i % 256] + base[i // 256] for i in range(pairs)]
    tokens += [f"tok{i:06d}" for i in range(len(tokens), vocab - 1)] + [EOS_TEXT]
    merges = [f"{base[i % 256]} {base[i // 256]}" for i in range(pairs)]
    merges += [f"tok{i:06d} tok{i + 1:06d}" for i in range(vocab - 256 - pairs)]
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": TOKENIZER_PRE,
        "tokenizer.ggml.tokens": tokens,
        # normal tokens (1), BOS and EOS control tokens (3) as converted tokenizers mark them
        "tokenizer.ggml.token_type": [Typed(T_INT32, 1)] * (vocab - 2) + [Typed(T_INT32, 3)] * 2,
        "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": Typed(T_UINT32, vocab - 2),
        "tokenizer.ggml.eos_token_id": Typed(T_UINT32, vocab - 1),
        "tokenizer.ggml.add_bos_token": False,
    }


def _align(offset: int) -> int:
    return offset + (-offset % ALIGNMENT)


def _tensor_info(t: Tensor, offset: int) -> bytes:
    return (_pack_string(t.name) + struct.pack("<I", len(t.dims)) + b"".join(struct.pack("<Q", d) for d in t.dims)
            + struct.pack("<IQ", GGML_TYPES[t.ggml_type], offset))


def encode_header(meta: dict[str, Any], tensor_list: list[Tensor]) -> bytes:
    """Header, metadata and tensor infos, padded to the alignment (the bytes before the data)."""
    out = [MAGIC, struct.pack("<IQQ", VERSION, len(tensor_list), len(meta))]
    for key, value in meta.items():
        gguf_type = _guess_type(value)
        out.append(_pack_string(key) + struct.pack("<I", gguf_type) + _pack_value(gguf_type, value))
    offset = 0
    for t in tensor_list:
        out.append(_tensor_info(t, offset))
        offset = _align(offset + t.nbytes)
    data = b"".join(out)
    return data + b"\0" * (-len(data) % ALIGNMENT)


def planned_size(shape: Shape, ftype: str, name: str = "probe") -> int:
    """The file's size in bytes, computed without writing it."""
    tensor_list = tensors(shape, ftype)
    data = 0
    for t in tensor_list:
        data = _align(data + t.nbytes)
    return len(encode_header(metadata(shape, ftype, name), tensor_list)) + data


def _pattern(ggml_type: str, rng: random.Random) -> bytes:
    """CHUNK_BYTES (rounded down to whole blocks) of valid random blocks of `ggml_type`."""
    block_bytes, _ = BLOCKS[ggml_type]
    if ggml_type == "F32":
        return struct.pack("<f", 1.0) * (CHUNK_BYTES // 4)  # norms and biases: 1.0 keeps activations bounded
    buf = bytearray(rng.randbytes(CHUNK_BYTES // block_bytes * block_bytes))
    if ggml_type == "F16":
        buf[1::2] = bytes(b & 0xB3 for b in buf[1::2])  # exponent <= 12: |x| < 0.25, never inf/NaN
        return bytes(buf)
    n = len(buf) // block_bytes
    for off in _SCALE_OFFSETS[ggml_type]:
        buf[off::block_bytes] = _SMALL_HALF[:1] * n
        buf[off + 1::block_bytes] = _SMALL_HALF[1:] * n
    return bytes(buf)


def _data_chunks(tensor_list: list[Tensor], seed: int) -> Iterator[bytes]:
    """Each tensor's data followed by padding to the alignment (as gguf.cpp writes it)."""
    rng = random.Random(seed)
    patterns: dict[str, bytes] = {}
    for t in tensor_list:
        pattern = patterns.get(t.ggml_type) or patterns.setdefault(t.ggml_type, _pattern(t.ggml_type, rng))
        left = t.nbytes
        while left:
            piece = pattern[:left] if left < len(pattern) else pattern
            yield piece
            left -= len(piece)
        if t.nbytes % ALIGNMENT:
            yield b"\0" * (-t.nbytes % ALIGNMENT)


def write(stream: BinaryIO, shape: Shape, ftype: str, name: str, seed: int = 0,
          progress: Progress | None = None) -> tuple[int, str]:
    """Stream the file to `stream`; return (bytes written, sha256 hex)."""
    tensor_list = tensors(shape, ftype)
    digest = hashlib.sha256()
    total = 0
    for piece in [encode_header(metadata(shape, ftype, name), tensor_list)], _data_chunks(tensor_list, seed):
        for chunk in piece:
            stream.write(chunk)
            digest.update(chunk)
            total += len(chunk)
            if progress:
                progress(total)
    return total, digest.hexdigest()


def write_file(path: Path, shape: Shape, ftype: str, name: str, seed: int = 0,
               progress: Progress | None = None) -> tuple[int, str]:
    """Write the file at `path` (removed again if writing fails)."""
    try:
        with open(path, "wb") as stream:
            return write(stream, shape, ftype, name, seed, progress)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
