"""The simulator takes a GGUF uploaded through /api/blobs + /api/create like Ollama:
header and tensor infos checked, the model's facts derived from its metadata and
tensors (never from its name), and it is reported like any model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from coderig_deploy.probe import gguf as writer
from coderig_deploy.probe.tensors import Shape
from coderig_deploy.sandbox.ollama_sim import create, placement
from coderig_deploy.sandbox.ollama_sim.handlers_models import details
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.ollama_sim.store import Store, StoreError

SMALL = Shape(arch="llama", layers=4, heads=8, kv_heads=2, hidden=512, head_dim=64, ffn=1536, vocab=2000,
              trained_ctx=8192, tied_embeddings=True)
MOE = Shape(arch="qwen3moe", layers=2, heads=8, kv_heads=2, hidden=512, head_dim=64, ffn=256, vocab=2000,
            trained_ctx=8192, tied_embeddings=False, experts=8, experts_used=2)


def _upload(store: Store, data: bytes) -> str:
    import hashlib

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.write_blob(digest, io.BytesIO(data), len(data))
    return digest


def _create(store: Store, name: str, data: bytes) -> None:
    digest = _upload(store, data)
    create.build(store, parse(name), None, {"files": {"m.gguf": digest}, "parameters": {"num_ctx": 4096}},
                 lambda _status: None)


def _file(shape: Shape, ftype: str = "Q4_K_M") -> bytes:
    out = io.BytesIO()
    writer.write(out, shape, ftype, "some-name-that-says-70b")
    return out.getvalue()


def test_imported_model_is_described_from_its_tensors(tmp_path: Path) -> None:
    store = Store(tmp_path)
    data = _file(SMALL)
    _create(store, "coderig-probe/small:x", data)
    model = store.get("coderig-probe/small:x")
    assert model is not None
    info = model.model_info
    per_layer = 2 * 512 * 512 + 2 * 512 * 128 + 3 * 512 * 1536 + 2 * 512  # q, o; k, v; gate, up, down; norms
    params = 512 * 2000 + 4 * per_layer + 512  # tied token embedding, layers, output norm
    assert info["general.parameter_count"] == params
    assert info["llama.vocab_size"] == 2000 and info["coderig.sim.tied_embeddings"] is True
    assert info["tokenizer.ggml.tokens"] is None  # long arrays: null, as /api/show shows them
    assert details(model)["family"] == "llama" and details(model)["quantization_level"] == "Q4_K_M"
    arch = placement.architecture(info)
    assert (arch.layers, arch.kv_heads, arch.vocab, arch.tied_embeddings) == (4, 2, 2000, True)
    assert model.size() == len(data) + sum(lay["size"] for lay in model.layers()[1:])


def test_mixture_of_experts_active_parameters_come_from_the_expert_tensors(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _create(store, "coderig-probe/moe:x", _file(MOE))
    info = store.get("coderig-probe/moe:x").model_info  # type: ignore[union-attr]
    expert = 2 * 3 * 512 * 256 * 8  # layers x (gate, up, down) x hidden x ffn x experts
    assert info["coderig.sim.active_parameter_count"] == info["general.parameter_count"] - expert * 6 // 8
    assert placement.architecture(info).experts_used == 2


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b[: len(b) // 2], "truncated GGUF"),
    (lambda b: b"GGML" + b[4:], "bad magic"),
    (lambda b: b[:4] + (9).to_bytes(4, "little") + b[8:], "unsupported GGUF version 9"),
])
def test_a_damaged_file_is_refused_with_400(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    store = Store(tmp_path)
    with pytest.raises(StoreError, match=message) as info:
        _create(store, "coderig-probe/bad:x", damage(_file(SMALL)))
    assert info.value.status == 400
    assert list(store.names()) == []
