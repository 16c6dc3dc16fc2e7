"""`/api/create`: a new manifest from a base model or uploaded GGUF blobs, with
parameters (num_ctx ...), template, system and license layers (ollama.md)."""

from __future__ import annotations

import json
from typing import Any, Callable

from . import gguf
from .names import ModelName
from .store import (CONFIG_TYPE, LAYER_LICENSE, LAYER_MODEL, LAYER_PARAMS, LAYER_SYSTEM, LAYER_TEMPLATE,
                    MANIFEST_V2, Model, Store, StoreError)

Emit = Callable[[dict[str, Any]], None]

# Value types of the options Ollama accepts in parameters (api.Options); others are rejected.
_INT = {"num_ctx", "num_predict", "num_keep", "seed", "top_k", "repeat_last_n", "num_batch", "num_gpu",
        "main_gpu", "num_thread", "mirostat"}
_FLOAT = {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
          "frequency_penalty", "mirostat_tau", "mirostat_eta", "tfs_z"}
_BOOL = {"use_mmap", "use_mlock", "numa", "low_vram", "penalize_newline"}
_LIST = {"stop"}


def coerce_parameters(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            if key in _INT:
                out[key] = int(value)
            elif key in _FLOAT:
                out[key] = float(value)
            elif key in _BOOL:
                out[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true")
            elif key in _LIST:
                out[key] = list(value) if isinstance(value, (list, tuple)) else [str(value)]
            else:
                raise StoreError(f"unknown parameter '{key}'", 400)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"invalid value for parameter '{key}': {value!r}", 400) from exc
    return out


def _text_layer(store: Store, media_type: str, text: str) -> dict[str, Any]:
    return {"mediaType": media_type, **store.put_bytes(text.encode())}


def _model_layers(store: Store, base: Model | None, files: dict[str, str]) -> list[dict[str, Any]]:
    if files:
        layers = []
        for filename, digest in files.items():
            if not store.has_blob(digest):
                raise StoreError(f"blob {digest} for {filename} not found: upload it with POST /api/blobs", 400)
            try:  # header, metadata and tensor infos, checked against the file's length
                gguf.read_model_info(str(store.blob_path(digest)))
            except gguf.GGUFError as exc:
                raise StoreError(f"{filename}: {exc}", 400) from exc
            layers.append({"mediaType": LAYER_MODEL, "digest": digest,
                           "size": store.blob_path(digest).stat().st_size})
        return layers
    assert base is not None
    return [lay for lay in base.layers() if lay["mediaType"] == LAYER_MODEL]


def build(store: Store, name: ModelName, base: Model | None, body: dict[str, Any], emit: Emit) -> None:
    emit({"status": "gathering model components"})
    layers = _model_layers(store, base, body.get("files") or {})
    params = dict(base.params) if base else {}
    params.update(coerce_parameters(body.get("parameters") or {}))
    texts = {
        LAYER_TEMPLATE: body.get("template", base.template if base else ""),
        LAYER_SYSTEM: body.get("system", base.system if base else ""),
        LAYER_LICENSE: _license(body.get("license"), base),
    }
    for media_type, text in texts.items():
        if text:
            layers.append(_text_layer(store, media_type, text))
    if params:
        layers.append(_text_layer(store, LAYER_PARAMS, json.dumps(params)))
    for layer in layers:
        reused = base is not None and any(b["digest"] == layer["digest"] for b in base.layers())
        emit({"status": f"{'using existing' if reused else 'creating new'} layer {layer['digest']}"})
    config = _config(store, layers, base)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_TYPE, **store.put_bytes(config)}, "layers": layers}
    emit({"status": "writing manifest"})
    store.write_manifest(name, json.dumps(manifest).encode())
    emit({"status": "success"})


def _license(raw: Any, base: Model | None) -> str:
    if raw is None:
        return base.license if base else ""
    return "\n".join(raw) if isinstance(raw, list) else str(raw)


def _config(store: Store, layers: list[dict[str, Any]], base: Model | None) -> bytes:
    info: dict[str, Any] = {}
    model_layer = next((lay for lay in layers if lay["mediaType"] == LAYER_MODEL), None)
    if model_layer is not None:
        info = gguf.read_model_info(str(store.blob_path(model_layer["digest"])))
    family = str(info.get("general.architecture", ""))
    return json.dumps({
        "model_format": "gguf", "model_family": family, "model_families": [family],
        "model_type": f"{int(info.get('general.parameter_count', 0)) / 1e9:.1f}B",
        "file_type": gguf.FILE_TYPE_NAMES.get(int(info.get("general.file_type", -1)), "unknown"),
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [lay["digest"] for lay in layers]},
    }, sort_keys=True).encode()
