import hashlib
import io
import json
from pathlib import Path

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.sandbox.ollama_sim import gguf
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.ollama_sim.store import LAYER_MODEL, LAYER_PARAMS, Store, StoreError
from coderig_deploy.sandbox.synthetic_models import build


def _install(store: Store, tag: str, name: str) -> None:
    model = build(load_catalog().model(tag))
    for digest, data in model.blobs.items():
        store.write_blob(digest, io.BytesIO(data), len(data))
    store.write_manifest(parse(name), model.manifest)


def test_blob_files_are_named_by_digest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    data = b"hello"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.write_blob(digest, io.BytesIO(data), len(data))
    assert (tmp_path / "blobs" / f"sha256-{hashlib.sha256(data).hexdigest()}").read_bytes() == data
    assert store.has_blob(digest, 5) and not store.has_blob(digest, 6)


def test_digest_mismatch_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(tmp_path)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(StoreError, match="digest mismatch") as info:
        store.write_blob(wrong, io.BytesIO(b"data"), 4)
    assert info.value.status == 400
    assert list((tmp_path / "blobs").iterdir()) == []


def test_short_read_is_an_error(tmp_path: Path) -> None:
    data = b"abc"
    with pytest.raises(StoreError, match="short read"):
        Store(tmp_path).write_blob("sha256:" + hashlib.sha256(data).hexdigest(), io.BytesIO(data), 10)


def test_manifest_layout_and_model_view(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _install(store, "qwen2.5-coder:14b-instruct-q4_K_M", "10.79.0.1:5000/library/qwen2.5-coder:14b-instruct-q4_K_M")
    path = tmp_path / "manifests" / "10.79.0.1:5000" / "library" / "qwen2.5-coder" / "14b-instruct-q4_K_M"
    assert path.is_file()
    manifest = json.loads(path.read_bytes())
    assert manifest["schemaVersion"] == 2
    assert [lay["mediaType"] for lay in manifest["layers"]][0] == LAYER_MODEL
    model = store.get("10.79.0.1:5000/library/qwen2.5-coder:14b-instruct-q4_K_M")
    assert model is not None
    assert model.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.model_info["qwen2.block_count"] == 48
    published = load_catalog().model("qwen2.5-coder:14b-instruct-q4_K_M").file_bytes
    assert model.weights_bytes() == published  # the real file's size, not the stub's
    assert model.layer(LAYER_MODEL)["size"] < 4096
    assert model.params == {"stop": ["<|im_start|>", "<|im_end|>"]}
    assert [n.display() for n in store.names()] == ["10.79.0.1:5000/library/qwen2.5-coder:14b-instruct-q4_K_M"]


def test_every_blob_verifies_and_delete_prunes(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _install(store, "starcoder2:3b", "starcoder2:3b")
    model = store.get("starcoder2:3b")
    assert model is not None
    for desc in [model.manifest["config"], *model.layers()]:
        assert store.verify_blob(desc["digest"])
    store.delete(parse("starcoder2:3b"))
    assert store.get("starcoder2:3b") is None
    assert len(store.prune()) == 5  # config + 4 layers
    assert not (tmp_path / "manifests" / "registry.ollama.ai").exists()
    with pytest.raises(StoreError) as info:
        store.delete(parse("starcoder2:3b"))
    assert info.value.status == 404


def test_prune_keeps_referenced_and_young_blobs(tmp_path: Path) -> None:
    store = Store(tmp_path)
    _install(store, "starcoder2:3b", "starcoder2:3b")
    stray = store.put_bytes(b"unreferenced")
    assert store.prune(min_age=3600) == []
    assert store.prune() == ["sha256-" + stray["digest"].split(":")[1]]
    assert store.get("starcoder2:3b") is not None


def test_synthetic_model_is_deterministic_and_self_consistent() -> None:
    choice = load_catalog().model("llama3.1:70b-instruct-q4_K_M")
    first, second = build(choice), build(choice)
    assert first == second
    manifest = json.loads(first.manifest)
    for desc in [manifest["config"], *manifest["layers"]]:
        data = first.blobs[desc["digest"]]
        assert desc["digest"] == "sha256:" + hashlib.sha256(data).hexdigest() and desc["size"] == len(data)
    kinds = {lay["mediaType"] for lay in manifest["layers"]}
    assert kinds == {LAYER_MODEL, LAYER_PARAMS, "application/vnd.ollama.image.template",
                     "application/vnd.ollama.image.license"}
    meta = gguf.read_metadata(io.BytesIO(first.blobs[manifest["layers"][0]["digest"]]))
    assert meta["general.architecture"] == "llama"
    assert meta["llama.block_count"] == 80 and meta["llama.attention.head_count_kv"] == 8
    assert meta["coderig.sim.file_size"] == choice.file_bytes
