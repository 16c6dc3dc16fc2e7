"""The fit model: does a model fit on a set of GPUs, how is it split, how fast is it.

Pure functions over plain dataclasses, standard library only: the Ollama simulator
ships this very file inside its release archive and computes `/api/ps` from it.
Facts (architectures, sizes, bandwidths, engine constants) come in as arguments;
`catalog.py` loads them from the data files, where each one names its source.

Memory is modelled the way llama.cpp (and Ollama, which runs llama.cpp's
llama-server) allocates it, per GPU:

    used = weights of the layers placed there + their KV cache
           + compute buffer (one ubatch through the graph) + CUDA runtime overhead

Decode speed follows the memory-bandwidth roofline: a token reads every weight
once and the KV cache up to the current depth, device after device (a layer split
runs sequentially), plus a fixed launch latency per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1 << 20

# Bytes per KV-cache element (ggml block sizes: q8_0 = 34 bytes per 32 values,
# q4_0 = 18 bytes per 32 values; f16 = 2 bytes).
KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}

F32 = 4  # activations and logits are f32 in llama.cpp's compute graph
HIDDEN_STATE_BUFFERS = 3  # residual stream, normed input, attention output live at once


@dataclass(frozen=True)
class Architecture:
    """What the fit needs to know about a model (GGUF metadata names in comments)."""

    layers: int  # <arch>.block_count
    heads: int  # <arch>.attention.head_count
    kv_heads: int  # <arch>.attention.head_count_kv
    hidden: int  # <arch>.embedding_length
    head_dim: int  # <arch>.attention.key_length
    ffn: int  # <arch>.feed_forward_length (per expert for MoE)
    vocab: int
    params_b: float
    active_params_b: float
    tied_embeddings: bool = False
    experts: int = 0
    experts_used: int = 0


@dataclass(frozen=True)
class QuantType:
    name: str
    embd_bpw: float  # token_embd tensor (stays in system RAM)
    output_bpw: float  # output (lm_head) tensor


@dataclass(frozen=True)
class Device:
    name: str
    memory_mib: int
    bandwidth_gbs: float


@dataclass(frozen=True)
class Engine:
    bandwidth_efficiency: float
    per_layer_latency_us: float
    cuda_overhead_mib: float
    fit_margin_mib: float
    batch_size: int = 512


@dataclass(frozen=True)
class FitRequest:
    arch: Architecture
    quant: QuantType
    file_bytes: int
    devices: tuple[Device, ...]
    engine: Engine
    ctx: int
    kv_cache: str = "f16"
    flash_attention: bool = True
    parallel: int = 1
    spread: bool = False  # Ollama keeps a model on one GPU when it fits there (OLLAMA_SCHED_SPREAD)
    ram_bandwidth_gbs: float = 64.0
    depth: int = 512  # tokens already in the cache when decode speed is predicted
    num_gpu: int | None = None  # Ollama's num_gpu option: at most this many layer slots on GPUs


@dataclass(frozen=True)
class DeviceUse:
    name: str
    total_mib: float
    layers: int
    weights_mib: float
    kv_cache_mib: float
    compute_mib: float
    overhead_mib: float

    @property
    def used_mib(self) -> float:
        return self.weights_mib + self.kv_cache_mib + self.compute_mib + self.overhead_mib


@dataclass(frozen=True)
class FitResult:
    fits: bool
    layers_total: int  # repeating layers + the output layer, as llama.cpp counts n_gpu_layers
    layers_on_gpu: int
    devices: tuple[DeviceUse, ...]
    cpu_weights_mib: float  # weights left in system RAM (token embedding always; offloaded layers)
    cpu_kv_cache_mib: float
    gpu_fraction: float
    decode_tok_s: float
    margin_mib: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def vram_mib(self) -> float:
        return sum(d.used_mib for d in self.devices)

    @property
    def ps_size_vram_bytes(self) -> int:
        """Ollama's /api/ps `size_vram`: weights, KV cache and compute buffers on the GPUs."""
        return round(sum(d.weights_mib + d.kv_cache_mib + d.compute_mib for d in self.devices) * MIB)

    @property
    def ps_size_bytes(self) -> int:
        """Ollama's /api/ps `size`: `size_vram`, plus what stays in system RAM under partial
        offload (Ollama counts the token embedding in the GPU share once every layer is offloaded)."""
        if self.fits:
            return self.ps_size_vram_bytes
        return self.ps_size_vram_bytes + round((self.cpu_weights_mib + self.cpu_kv_cache_mib) * MIB)


# --- sizes -------------------------------------------------------------------


def kv_cache_bytes(
    arch: Architecture, ctx: int, parallel: int = 1, cache_type: str = "f16", layers: int | None = None
) -> float:
    """K and V for every layer and cell: layers x ctx x parallel x kv_heads x head_dim x 2 x bytes/element."""
    n_layers = arch.layers if layers is None else layers
    per_element = KV_BYTES_PER_ELEMENT[cache_type]
    return n_layers * ctx * parallel * arch.kv_heads * arch.head_dim * 2 * per_element


def embedding_bytes(arch: Architecture, bpw: float) -> float:
    return arch.vocab * arch.hidden * bpw / 8


def weight_split(arch: Architecture, quant: QuantType, file_bytes: int) -> tuple[float, float, float]:
    """Bytes of (token embedding, one repeating layer, output layer) in the file.

    llama.cpp keeps token_embd in system RAM (it is a row lookup) and places the
    output layer with the last offloaded device. A tied model has no output
    tensor in the file; llama.cpp duplicates token_embd for the output on GPU.
    """
    embd = embedding_bytes(arch, quant.embd_bpw)
    output = embd if arch.tied_embeddings else embedding_bytes(arch, quant.output_bpw)
    in_file = embd if arch.tied_embeddings else embd + output
    per_layer = max(file_bytes - in_file, 0) / arch.layers
    return embd, per_layer, output


def compute_buffer_bytes(
    arch: Architecture, ctx_cells: int, batch: int, flash_attention: bool, with_output: bool, layers: int
) -> float:
    """Peak of llama.cpp's graph allocator for one ubatch on one device.

    Without flash attention the KQ score matrix (ubatch x cells x heads, f32) is
    materialised and grows with the context; with it, attention is tiled and
    only its output is. The FFN intermediates (gate and up) compete with it for
    the same reused memory; hidden-state buffers and, on the device with the
    output layer, the logits of the ubatch come on top.
    """
    if layers == 0 and not with_output:
        return 0.0
    ubatch = min(batch, ctx_cells)
    if flash_attention:
        attention = ubatch * arch.heads * arch.head_dim * F32
    else:
        attention = ubatch * ctx_cells * arch.heads * F32
    ffn_width = arch.ffn * max(arch.experts_used, 1)
    ffn = ubatch * ffn_width * 2 * F32
    hidden = ubatch * arch.hidden * F32 * HIDDEN_STATE_BUFFERS
    logits = ubatch * arch.vocab * F32 if with_output else 0.0
    return hidden + max(attention, ffn) + logits


def kv_cells(ctx: int, parallel: int) -> int:
    """Cells of the KV cache: Ollama starts llama-server with -c num_ctx x num_parallel."""
    return ctx * parallel


# --- placement ---------------------------------------------------------------


def assign_layers(n_slots: int, capacities: list[float]) -> list[int]:
    """Split `n_slots` layers over devices in proportion to their memory, in order.

    As llama.cpp's tensor split: layer i goes to the first device whose
    cumulative share exceeds i / n_slots.
    """
    total = sum(capacities)
    bounds, acc = [], 0.0
    for cap in capacities:
        acc += cap / total
        bounds.append(acc)
    counts = [0] * len(capacities)
    for i in range(n_slots):
        position = i / n_slots
        device = next((d for d, b in enumerate(bounds) if position < b - 1e-12), len(bounds) - 1)
        counts[device] += 1
    return counts


def place(req: FitRequest, devices: tuple[Device, ...], gpu_layers: int) -> tuple[DeviceUse, ...]:
    """Memory per device with the first `gpu_layers` layer slots on GPUs."""
    arch = req.arch
    _, per_layer, output = weight_split(arch, req.quant, req.file_bytes)
    cells = kv_cells(req.ctx, req.parallel)
    slots = assign_layers(gpu_layers, [d.memory_mib for d in devices]) if gpu_layers else [0] * len(devices)
    output_on_gpu = gpu_layers > arch.layers
    last = max((i for i, n in enumerate(slots) if n), default=-1)
    uses = []
    for i, (dev, n) in enumerate(zip(devices, slots)):
        has_output = output_on_gpu and i == last
        layers = n - 1 if has_output else n
        weights = layers * per_layer + (output if has_output else 0.0)
        kv = kv_cache_bytes(arch, cells, 1, effective_kv_cache(req), layers=layers)
        compute = compute_buffer_bytes(arch, cells, req.engine.batch_size, req.flash_attention, has_output, layers)
        overhead = req.engine.cuda_overhead_mib if n else 0.0
        uses.append(DeviceUse(dev.name, dev.memory_mib, layers, weights / MIB, kv / MIB, compute / MIB, overhead))
    return tuple(uses)


def _fits(uses: tuple[DeviceUse, ...], margin_mib: float) -> bool:
    return all(u.used_mib <= u.total_mib - margin_mib for u in uses if u.layers or u.weights_mib)


def _best_placement(req: FitRequest) -> tuple[tuple[Device, ...], tuple[DeviceUse, ...], int]:
    """The most layer slots that fit, preferring one GPU when the whole model fits there."""
    all_slots = req.arch.layers + 1
    if not req.devices:
        return (), (), 0
    margin = req.engine.fit_margin_mib
    most = all_slots if req.num_gpu is None else max(min(req.num_gpu, all_slots), 0)
    if most == all_slots:
        candidates = [req.devices]
        if not req.spread and len(req.devices) > 1:
            # Ollama's scheduler loads a model on the single GPU with the most memory when it fits there.
            candidates.insert(0, (max(req.devices, key=lambda d: d.memory_mib),))
        for devices in candidates:
            uses = place(req, devices, all_slots)
            if _fits(uses, margin):
                return devices, uses, all_slots
        most -= 1
    for k in range(most, -1, -1):
        uses = place(req, req.devices, k)
        if _fits(uses, margin):
            return req.devices, uses, k
    return req.devices, place(req, req.devices, 0), 0


# --- speed -------------------------------------------------------------------


def decode_tokens_per_second(
    req: FitRequest, uses: tuple[DeviceUse, ...], cpu_layers: int, output_on_cpu: bool
) -> float:
    """Roofline decode speed: per-token bytes over effective bandwidth, device after device."""
    arch, eng = req.arch, req.engine
    active = arch.active_params_b / arch.params_b if arch.params_b else 1.0
    _, per_layer, output = weight_split(arch, req.quant, req.file_bytes)
    kv_per_layer = kv_cache_bytes(arch, min(req.depth, req.ctx), 1, effective_kv_cache(req), layers=1)
    seconds = 0.0
    for use, dev in zip(uses, req.devices):
        read = use.weights_mib * MIB * active + use.layers * kv_per_layer
        seconds += read / (eng.bandwidth_efficiency * dev.bandwidth_gbs * 1e9)
    cpu_read = cpu_layers * (per_layer * active + kv_per_layer) + (output if output_on_cpu else 0.0)
    seconds += cpu_read / (eng.bandwidth_efficiency * req.ram_bandwidth_gbs * 1e9)
    seconds += arch.layers * eng.per_layer_latency_us * 1e-6
    return 1.0 / seconds


def effective_kv_cache(req: FitRequest) -> str:
    """Ollama falls back to an f16 cache when flash attention is off (reference/ollama.md)."""
    return req.kv_cache if req.flash_attention else "f16"


# --- the whole answer ---------------------------------------------------------


def fit(req: FitRequest) -> FitResult:
    """Place the model, size every buffer, decide `fits` and predict decode speed."""
    if req.ctx <= 0 or req.parallel <= 0:
        raise ValueError("ctx and parallel must be positive")
    if req.kv_cache not in KV_BYTES_PER_ELEMENT:
        raise ValueError(f"unknown KV cache type {req.kv_cache!r}")
    arch = req.arch
    n_slots = arch.layers + 1
    used_devices, uses, gpu_slots = _best_placement(req)
    # Report every requested device, idle ones with nothing on them.
    by_name = {id(d): u for d, u in zip(used_devices, uses)}
    all_uses = tuple(by_name.get(id(d), DeviceUse(d.name, d.memory_mib, 0, 0.0, 0.0, 0.0, 0.0)) for d in req.devices)
    embd, per_layer, output = weight_split(arch, req.quant, req.file_bytes)
    gpu_repeating = sum(u.layers for u in all_uses)
    cpu_layers = arch.layers - gpu_repeating
    output_on_cpu = gpu_slots <= arch.layers
    cpu_weights = embd + cpu_layers * per_layer + (output if output_on_cpu else 0.0)
    cells = kv_cells(req.ctx, req.parallel)
    cpu_kv = kv_cache_bytes(arch, cells, 1, effective_kv_cache(req), layers=cpu_layers)
    offloadable = arch.layers * per_layer + output
    on_gpu = gpu_repeating * per_layer + (0.0 if output_on_cpu else output)
    notes = []
    if gpu_slots < n_slots:
        notes.append(f"partial offload: {gpu_slots} of {n_slots} layers on GPU, the rest in system RAM")
    if req.kv_cache != "f16" and not req.flash_attention:
        notes.append(f"a {req.kv_cache} KV cache needs flash attention; Ollama falls back to f16 without it")
    return FitResult(
        fits=gpu_slots == n_slots,
        layers_total=n_slots,
        layers_on_gpu=gpu_slots,
        devices=all_uses,
        cpu_weights_mib=cpu_weights / MIB,
        cpu_kv_cache_mib=cpu_kv / MIB,
        gpu_fraction=on_gpu / offloadable if offloadable else 0.0,
        decode_tok_s=decode_tokens_per_second(req, all_uses, cpu_layers, output_on_cpu),
        margin_mib=req.engine.fit_margin_mib,
        notes=tuple(notes),
    )
