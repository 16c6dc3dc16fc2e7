"""GGUF v3 header: write a metadata-only file, read the metadata back.

Format (ggml's docs/gguf.md): magic ``GGUF``, uint32 version, uint64 tensor count,
uint64 metadata count, then key/value pairs (key = uint64 length + UTF-8 bytes,
uint32 value type, value), then tensor infos, padding to ``general.alignment``
(default 32) and tensor data. The simulator's model layers carry no tensors: the
metadata alone names the architecture and the size of the real file they stand for.
Stdlib only: this module ships inside the simulator.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

MAGIC = b"GGUF"
VERSION = 3
ALIGNMENT = 32

# GGUF value types (gguf.md, enum gguf_metadata_value_type).
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = 8, 9, 10, 11, 12

_SCALAR = {
    T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h",
    T_UINT32: "<I", T_INT32: "<i", T_FLOAT32: "<f", T_BOOL: "<?",
    T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d",
}

# llama.cpp's llama_ftype numbers, as stored in general.file_type.
FILE_TYPES = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9,
    "Q2_K": 10, "Q3_K_S": 11, "Q3_K_M": 12, "Q3_K_L": 13, "Q4_K_S": 14,
    "Q4_K_M": 15, "Q5_K_S": 16, "Q5_K_M": 17, "Q6_K": 18, "BF16": 32,
}
FILE_TYPE_NAMES = {number: name for name, number in FILE_TYPES.items()}

# ggml tensor types (ggml.h enum ggml_type) and their block layout (ggml-common.h):
# (bytes per block, weights per block).
GGML_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
              "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "BF16": 30}
GGML_TYPE_NAMES = {number: name for name, number in GGML_TYPES.items()}
BLOCKS = {"F32": (4, 1), "F16": (2, 1), "BF16": (2, 1), "Q4_0": (18, 32), "Q4_1": (20, 32),
          "Q5_0": (22, 32), "Q5_1": (24, 32), "Q8_0": (34, 32), "Q2_K": (84, 256), "Q3_K": (110, 256),
          "Q4_K": (144, 256), "Q5_K": (176, 256), "Q6_K": (210, 256)}
# Arrays longer than this (tokenizer tokens, merges) are not kept: Ollama's /api/show
# reports them as null unless asked for verbose output.
MAX_KEPT_ARRAY = 1024


class GGUFError(ValueError):
    """Bytes that are not a GGUF v2/v3 header."""


class Typed:
    """A value with an explicit GGUF type (for when the default guess is wrong)."""

    def __init__(self, gguf_type: int, value: Any) -> None:
        self.gguf_type = gguf_type
        self.value = value


def _guess_type(value: Any) -> int:
    if isinstance(value, Typed):
        return value.gguf_type
    if isinstance(value, bool):
        return T_BOOL
    if isinstance(value, int):
        return T_UINT32 if 0 <= value < 2**32 else T_UINT64 if value >= 0 else T_INT64
    if isinstance(value, float):
        return T_FLOAT32
    if isinstance(value, str):
        return T_STRING
    if isinstance(value, (list, tuple)):
        return T_ARRAY
    raise GGUFError(f"no GGUF type for {type(value).__name__}")


def _pack_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _pack_value(gguf_type: int, value: Any) -> bytes:
    if isinstance(value, Typed):
        value = value.value
    if gguf_type == T_STRING:
        return _pack_string(value)
    if gguf_type == T_ARRAY:
        items = list(value)
        elem = _guess_type(items[0]) if items else T_UINT32
        body = b"".join(_pack_value(elem, item) for item in items)
        return struct.pack("<IQ", elem, len(items)) + body
    return struct.pack(_SCALAR[gguf_type], value)


def encode_header(metadata: dict[str, Any]) -> bytes:
    """Return a GGUF v3 file with `metadata` and no tensors, padded to the alignment."""
    out = [MAGIC, struct.pack("<IQQ", VERSION, 0, len(metadata))]
    for key, value in metadata.items():
        gguf_type = _guess_type(value)
        out.append(_pack_string(key) + struct.pack("<I", gguf_type) + _pack_value(gguf_type, value))
    data = b"".join(out)
    return data + b"\0" * (-len(data) % ALIGNMENT)


def _read(stream: BinaryIO, size: int) -> bytes:
    raw = stream.read(size)
    if len(raw) != size:
        raise GGUFError("truncated GGUF header")
    return raw


def _read_value(stream: BinaryIO, gguf_type: int) -> Any:
    if gguf_type == T_STRING:
        (length,) = struct.unpack("<Q", _read(stream, 8))
        return _read(stream, length).decode("utf-8", errors="replace")
    if gguf_type == T_ARRAY:
        elem, count = struct.unpack("<IQ", _read(stream, 12))
        if count > MAX_KEPT_ARRAY:
            _skip_array(stream, elem, count)
            return None
        return [_read_value(stream, elem) for _ in range(count)]
    fmt = _SCALAR.get(gguf_type)
    if fmt is None:
        raise GGUFError(f"unknown GGUF value type {gguf_type}")
    return struct.unpack(fmt, _read(stream, struct.calcsize(fmt)))[0]


def _skip_array(stream: BinaryIO, elem: int, count: int) -> None:
    if elem == T_STRING:
        for _ in range(count):
            (length,) = struct.unpack("<Q", _read(stream, 8))
            stream.seek(length, 1)
    elif elem in _SCALAR:
        stream.seek(struct.calcsize(_SCALAR[elem]) * count, 1)
    else:
        for _ in range(count):
            _read_value(stream, elem)


def _read_header(stream: BinaryIO) -> tuple[int, dict[str, Any]]:
    """(tensor count, metadata) of a GGUF v2/v3 stream positioned at its start."""
    if _read(stream, 4) != MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    version, tensor_count, count = struct.unpack("<IQQ", _read(stream, 20))
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    metadata: dict[str, Any] = {}
    for _ in range(count):
        key = _read_value(stream, T_STRING)
        (gguf_type,) = struct.unpack("<I", _read(stream, 4))
        metadata[key] = _read_value(stream, gguf_type)
    return tensor_count, metadata


def read_metadata(stream: BinaryIO) -> dict[str, Any]:
    """Read the metadata key/values of a GGUF v2/v3 file (tensor infos are not read)."""
    return _read_header(stream)[1]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dims: tuple[int, ...]  # ggml order: dims[0] is the row length
    ggml_type: str
    offset: int  # from the start of the data section

    @property
    def elements(self) -> int:
        return math.prod(self.dims)

    @property
    def nbytes(self) -> int:
        block_bytes, per_block = BLOCKS[self.ggml_type]
        return self.elements // per_block * block_bytes


def _read_tensor_info(stream: BinaryIO) -> TensorInfo:
    name = _read_value(stream, T_STRING)
    (n_dims,) = struct.unpack("<I", _read(stream, 4))
    if not 1 <= n_dims <= 4:
        raise GGUFError(f"tensor {name}: {n_dims} dimensions (ggml allows 1 to 4)")
    dims = struct.unpack(f"<{n_dims}Q", _read(stream, 8 * n_dims))
    type_id, offset = struct.unpack("<IQ", _read(stream, 12))
    ggml_type = GGML_TYPE_NAMES.get(type_id)
    if ggml_type is None:
        raise GGUFError(f"tensor {name}: unknown ggml type {type_id}")
    info = TensorInfo(name, tuple(dims), ggml_type, offset)
    if dims[0] % BLOCKS[ggml_type][1]:
        raise GGUFError(f"tensor {name}: row of {dims[0]} does not split into {ggml_type} blocks")
    return info


def read_file(path: str) -> tuple[dict[str, Any], list[TensorInfo]]:
    """Metadata and tensor infos of a GGUF file, checked against the file's length:
    every tensor aligned, inside the file, none overlapping the next."""
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        count, metadata = _read_header(stream)
        infos = [_read_tensor_info(stream) for _ in range(count)]
        header_end = stream.tell()
    alignment = int(metadata.get("general.alignment", ALIGNMENT))
    data_start = header_end + (-header_end % alignment)
    end = 0
    for t in sorted(infos, key=lambda t: t.offset):
        if t.offset % alignment or t.offset < end:
            raise GGUFError(f"tensor {t.name}: offset {t.offset} is misaligned or overlaps the previous tensor")
        end = t.offset + t.nbytes
    if infos and data_start + end > size:
        raise GGUFError(f"truncated GGUF: tensors need {data_start + end} bytes, the file has {size}")
    return metadata, infos


def derived_info(metadata: dict[str, Any], infos: list[TensorInfo]) -> dict[str, Any]:
    """What Ollama derives from the tensors, added where the metadata does not say it:
    parameter count, vocabulary size, tied embeddings, parameters active per token."""
    if not infos:
        return {}
    arch = metadata.get("general.architecture", "")
    by_name = {t.name: t for t in infos}
    total = sum(t.elements for t in infos)
    out: dict[str, Any] = {"general.parameter_count": total}
    if "token_embd.weight" in by_name:
        out[f"{arch}.vocab_size"] = by_name["token_embd.weight"].dims[1]
    out["coderig.sim.tied_embeddings"] = "output.weight" not in by_name
    experts, used = int(metadata.get(f"{arch}.expert_count", 0)), int(metadata.get(f"{arch}.expert_used_count", 0))
    if experts and used:
        expert_params = sum(t.elements for t in infos if "_exps." in t.name)
        out["coderig.sim.active_parameter_count"] = round(total - expert_params * (1 - used / experts))
    return {k: v for k, v in out.items() if k not in metadata}


_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def read_model_info(path: str) -> dict[str, Any]:
    """A model file's metadata plus what the tensors imply (cached per file version)."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        metadata, infos = read_file(path)
        if len(_CACHE) >= 64:  # a bounded cache: the oldest entry goes
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = {**metadata, **derived_info(metadata, infos)}
    return dict(_CACHE[key])


def read_metadata_file(path: str) -> dict[str, Any]:
    """Read the metadata of the GGUF file at `path`."""
    with open(path, "rb") as stream:
        return read_metadata(stream)
