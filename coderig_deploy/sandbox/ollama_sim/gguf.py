"""GGUF v3 header: write a metadata-only file, read the metadata back.

Format (ggml's docs/gguf.md): magic ``GGUF``, uint32 version, uint64 tensor count,
uint64 metadata count, then key/value pairs (key = uint64 length + UTF-8 bytes,
uint32 value type, value), then tensor infos, padding to ``general.alignment``
(default 32) and tensor data. The simulator's model layers carry no tensors: the
metadata alone names the architecture and the size of the real file they stand for.
Stdlib only: this module ships inside the simulator.
"""

from __future__ import annotations

import struct
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
        return [_read_value(stream, elem) for _ in range(count)]
    fmt = _SCALAR.get(gguf_type)
    if fmt is None:
        raise GGUFError(f"unknown GGUF value type {gguf_type}")
    return struct.unpack(fmt, _read(stream, struct.calcsize(fmt)))[0]


def read_metadata(stream: BinaryIO) -> dict[str, Any]:
    """Read the metadata key/values of a GGUF v2/v3 file (tensor infos are not read)."""
    if _read(stream, 4) != MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    version, _tensors, count = struct.unpack("<IQQ", _read(stream, 20))
    if version not in (2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    metadata: dict[str, Any] = {}
    for _ in range(count):
        key = _read_value(stream, T_STRING)
        (gguf_type,) = struct.unpack("<I", _read(stream, 4))
        metadata[key] = _read_value(stream, gguf_type)
    return metadata


def read_metadata_file(path: str) -> dict[str, Any]:
    """Read the metadata of the GGUF file at `path`."""
    with open(path, "rb") as stream:
        return read_metadata(stream)
