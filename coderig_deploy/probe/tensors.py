"""The tensors of a model's GGUF file: names, shapes and quantization types.

Names and shapes follow llama.cpp's GGUF tensor naming (gguf-py constants.py,
MODEL_TENSORS per architecture); shapes are in ggml order (ne[0] = the input
dimension, as stored in the file). The quantization type of each tensor follows
llama.cpp's `llama_tensor_get_type` (src/llama-quant.cpp) for the file types the
catalog lists. Stdlib only: this module runs on the probed host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coderig_deploy.sandbox.ollama_sim.gguf import BLOCKS, GGML_TYPES

# The base type of each file type (llama_model_quantize_impl's default_type).
BASE_TYPE = {"Q4_0": "Q4_0", "Q4_K_M": "Q4_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K", "Q8_0": "Q8_0", "F16": "F16"}
# Fallback when a row does not split into 256-weight blocks (llama-quant.cpp, "fallback").
_FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "Q2_K": "Q4_0", "Q3_K": "Q4_0"}


@dataclass(frozen=True)
class Shape:
    """What the tensor layout depends on (the catalog's models.tsv row, as plain data)."""

    arch: str  # GGUF general.architecture: llama, qwen2, qwen3moe, starcoder2
    layers: int
    heads: int
    kv_heads: int
    hidden: int
    head_dim: int
    ffn: int  # per expert for mixture-of-experts models
    vocab: int
    trained_ctx: int
    tied_embeddings: bool
    experts: int = 0
    experts_used: int = 0
    sliding_window: int = 0
    rope_freqs: bool = False  # llama 3.1's rope scaling factors tensor

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shape:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Tensor:
    name: str
    dims: tuple[int, ...]  # ggml order
    ggml_type: str

    @property
    def elements(self) -> int:
        count = 1
        for d in self.dims:
            count *= d
        return count

    @property
    def nbytes(self) -> int:
        block_bytes, per_block = BLOCKS[self.ggml_type]
        return self.elements // per_block * block_bytes


def _layer(s: Shape, i: int) -> list[tuple[str, tuple[int, ...]]]:
    q, kv, h, p = s.heads * s.head_dim, s.kv_heads * s.head_dim, s.hidden, f"blk.{i}."
    out = [(p + "attn_norm.weight", (h,))]
    out += [(p + "attn_q.weight", (h, q)), (p + "attn_k.weight", (h, kv)), (p + "attn_v.weight", (h, kv))]
    if s.arch in ("qwen2", "starcoder2"):
        out += [(p + "attn_q.bias", (q,)), (p + "attn_k.bias", (kv,)), (p + "attn_v.bias", (kv,))]
    out.append((p + "attn_output.weight", (q, h)))
    if s.arch == "starcoder2":
        out += [(p + "attn_output.bias", (h,)), (p + "attn_norm.bias", (h,)), (p + "ffn_norm.bias", (h,))]
    if s.arch == "qwen3moe":
        out += [(p + "attn_q_norm.weight", (s.head_dim,)), (p + "attn_k_norm.weight", (s.head_dim,))]
    out.append((p + "ffn_norm.weight", (h,)))
    if s.experts:
        e = s.experts
        out += [(p + "ffn_gate_inp.weight", (h, e)), (p + "ffn_gate_exps.weight", (h, s.ffn, e)),
                (p + "ffn_up_exps.weight", (h, s.ffn, e)), (p + "ffn_down_exps.weight", (s.ffn, h, e))]
    elif s.arch == "starcoder2":  # GELU MLP: up and down, with biases
        out += [(p + "ffn_up.weight", (h, s.ffn)), (p + "ffn_up.bias", (s.ffn,)),
                (p + "ffn_down.weight", (s.ffn, h)), (p + "ffn_down.bias", (h,))]
    else:
        out += [(p + "ffn_gate.weight", (h, s.ffn)), (p + "ffn_up.weight", (h, s.ffn)),
                (p + "ffn_down.weight", (s.ffn, h))]
    return out


def tensor_shapes(s: Shape) -> list[tuple[str, tuple[int, ...]]]:
    """Every tensor of the model in file order (as convert_hf_to_gguf.py writes them)."""
    out: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (s.hidden, s.vocab))]
    if s.rope_freqs:
        out.append(("rope_freqs.weight", (s.head_dim // 2,)))
    for i in range(s.layers):
        out += _layer(s, i)
    out.append(("output_norm.weight", (s.hidden,)))
    if s.arch == "starcoder2":
        out.append(("output_norm.bias", (s.hidden,)))
    if not s.tied_embeddings:
        out.append(("output.weight", (s.hidden, s.vocab)))
    return out


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    # llama-quant.cpp use_more_bits: first and last eighth, and every third layer between.
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _layer_index(name: str) -> int:
    return int(name.split(".")[1])


def tensor_type(name: str, dims: tuple[int, ...], ftype: str, s: Shape) -> str:
    """llama_tensor_get_type for the file types of the catalog (no imatrix, no overrides)."""
    if len(dims) < 2 or "ffn_gate_inp" in name:  # norms, biases, router: never quantized
        return "F32"
    base = BASE_TYPE[ftype]
    if ftype == "F16":
        return "F16"
    if name == "output.weight" or (s.tied_embeddings and name == "token_embd.weight"):
        return base if base == "Q8_0" else "Q6_K" if dims[0] % 256 == 0 else "Q8_0"
    new = base
    if ftype in ("Q4_K_M", "Q5_K_M") and (".attn_v." in name or ".ffn_down" in name):
        if _use_more_bits(_layer_index(name), s.layers):
            new = "Q6_K"
    if ".attn_v." in name:
        if s.layers == 80 and new in ("Q3_K", "Q4_K"):  # LLM_TYPE_70B: attn_v gets more bits
            new = "Q5_K"
        if s.experts == 8:
            new = "Q8_0"
    if BLOCKS[new][1] == 256 and dims[0] % 256:
        new = _FALLBACK[new]
    return new


def tensors(s: Shape, ftype: str) -> list[Tensor]:
    """The model's tensors with their types under file type `ftype` (e.g. Q4_K_M)."""
    if ftype not in BASE_TYPE:
        raise ValueError(f"file type {ftype} is not one the probe can write ({', '.join(BASE_TYPE)})")
    return [Tensor(name, dims, tensor_type(name, dims, ftype, s)) for name, dims in tensor_shapes(s)]
