"""Small synthetic Ollama models standing for real catalog models.

Each model is what Ollama's registry serves: a manifest, a config blob and layers
with Ollama's media types (reference/ollama.md, Model store). The model layer is a
GGUF v3 header without tensors whose metadata names the real architecture and
carries the size of the real file (``coderig.sim.file_size``), so the simulator's
/api/show and /api/ps look like the real model's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from coderig_deploy.catalog import ModelChoice
from coderig_deploy.editor.fim import fim_tokens
from coderig_deploy.sandbox.ollama_sim import gguf
from coderig_deploy.sandbox.ollama_sim.store import (CONFIG_TYPE, LAYER_LICENSE, LAYER_MODEL, LAYER_PARAMS,
                                                     LAYER_TEMPLATE, MANIFEST_V2, SIM_FILE_SIZE_KEY,
                                                     sha256_digest)

# Prompt templates and stop words of the families, as Ollama's library ships them (abridged).
_CHATML = ("{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
           "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n")
_LLAMA3 = ("{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
           "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n")
_PLAIN = "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}"
_FAMILY = {
    "qwen2": (_CHATML, ["<|im_start|>", "<|im_end|>"]),
    "qwen3moe": (_CHATML, ["<|im_start|>", "<|im_end|>"]),
    "llama": (_LLAMA3, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
    "starcoder2": (_PLAIN, ["<|endoftext|>"]),
}




def template_for(choice: ModelChoice) -> tuple[str, list[str]]:
    """The family's template and stop words; a FIM family's template has Ollama's .Suffix branch."""
    template, stop = _FAMILY.get(choice.model.gguf_arch, (_PLAIN, []))
    fim = fim_tokens(choice.model.ollama_name)
    if fim is None:
        return template, stop
    branch = f"{{{{- if .Suffix }}}}{fim.prefix}{{{{ .Prompt }}}}{fim.suffix}{{{{ .Suffix }}}}{fim.middle}{{{{- else }}}}"
    return branch + template + "{{- end }}", stop


@dataclass(frozen=True)
class SyntheticModel:
    manifest: bytes
    blobs: dict[str, bytes]  # digest -> content (config and every layer)


def gguf_metadata(choice: ModelChoice) -> dict[str, object]:
    spec, arch = choice.model, choice.model.gguf_arch
    meta: dict[str, object] = {
        "general.architecture": arch,
        "general.type": "model",
        "general.name": f"{spec.ollama_name} {spec.ollama_size}",
        "general.basename": spec.ollama_name,
        "general.size_label": spec.ollama_size.upper(),
        "general.parameter_count": gguf.Typed(gguf.T_UINT64, int(spec.params_b * 1e9)),
        "general.file_type": gguf.Typed(gguf.T_UINT32, gguf.FILE_TYPES[choice.quant.quant]),
        "general.quantization_version": gguf.Typed(gguf.T_UINT32, 2),
        f"{arch}.block_count": spec.layers,
        f"{arch}.context_length": spec.trained_ctx,
        f"{arch}.embedding_length": spec.hidden,
        f"{arch}.feed_forward_length": spec.ffn,
        f"{arch}.attention.head_count": spec.heads,
        f"{arch}.attention.head_count_kv": spec.kv_heads,
        f"{arch}.attention.key_length": spec.head_dim,
        f"{arch}.attention.value_length": spec.head_dim,
        f"{arch}.vocab_size": spec.vocab,
        "tokenizer.ggml.model": "gpt2",
    }
    if spec.experts:
        meta[f"{arch}.expert_count"] = spec.experts
        meta[f"{arch}.expert_used_count"] = spec.experts_used
        meta[f"{arch}.expert_feed_forward_length"] = spec.ffn
    if spec.sliding_window:
        meta[f"{arch}.attention.sliding_window"] = spec.sliding_window
    meta[SIM_FILE_SIZE_KEY] = gguf.Typed(gguf.T_UINT64, choice.file_bytes)
    meta["coderig.sim.active_parameter_count"] = gguf.Typed(gguf.T_UINT64, int(spec.active_params_b * 1e9))
    meta["coderig.sim.tied_embeddings"] = spec.tied_embeddings
    meta["coderig.sim.stands_for"] = choice.canonical_tag
    return meta


def build(choice: ModelChoice) -> SyntheticModel:
    """The manifest and blobs of the synthetic stand-in for `choice` (deterministic)."""
    arch = choice.model.gguf_arch
    template, stop = template_for(choice)
    contents = [
        (LAYER_MODEL, gguf.encode_header(gguf_metadata(choice))),
        (LAYER_TEMPLATE, template.encode()),
        (LAYER_LICENSE, f"Synthetic stand-in for {choice.canonical_tag} (coderig sandbox). "
                        "The real model's license governs the real weights.\n".encode()),
        (LAYER_PARAMS, json.dumps({"stop": stop}).encode()),
    ]
    layers = [{"mediaType": kind, "digest": sha256_digest(data), "size": len(data)} for kind, data in contents]
    config = json.dumps({
        "model_format": "gguf", "model_family": arch, "model_families": [arch],
        "model_type": choice.model.ollama_size.upper(), "file_type": choice.quant.quant,
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [lay["digest"] for lay in layers]},
    }, sort_keys=True).encode()
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_TYPE, "digest": sha256_digest(config), "size": len(config)},
                "layers": layers}
    blobs = {sha256_digest(data): data for _, data in contents}
    blobs[sha256_digest(config)] = config
    return SyntheticModel(json.dumps(manifest, indent=None).encode(), blobs)
