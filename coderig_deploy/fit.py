"""The fit model: does a model fit on a set of GPUs, how is it split, how fast is it.

Pure functions over plain dataclasses, standard library only: the Ollama simulator
ships this very file inside its release archive and computes `/api/ps` from it.
Facts (architectures, sizes, bandwidths, engine constants) come in as arguments;
`catalog.py` loads them from the data files, where each one names its source.

Memory is modelled the way llama.cpp (and Ollama, which runs llama.cpp's
llama-server) allocates it, per GPU:

    used = weights of the layers placed there + their KV cache
           + compute buffer (one ubatch through the graph) + CUDA runtime overhead

Decode speed: a token reads every weight once and the KV cache up to the current
depth, device after device (a layer split runs sequentially). Each device's memory time
is those bytes over the rate its decode kernels reach (decode_bandwidth): the lower of
the memory's sustained bandwidth and Little's law's ceiling, SMs x bytes each SM keeps
in flight / memory latency; plus a latency per layer. On consumer GDDR cards the memory
sets the pace; on HBM cards (A100, H100, H200, B200) the kernels' bytes in flight do,
which is why llama.cpp decodes there at a fraction of the bandwidth roofline. Without
flash attention each query head passes over its KV head's K and V (kv_read_factor).
(An integer-compute ceiling, dequantize-and-dot work per weight against SMs x lanes x
clock, is kept for a quant type that sets decode_ops_per_weight; none does: it binds on
no calibration row once the bytes-in-flight ceiling exists.)

Prefill (prompt processing) is matrix work: 2 FLOPs per active weight per token plus
attention against the tokens before it, against the GPU's tensor throughput (int8 for MMQ), less
the SMs the last wave of a tiled GEMM leaves idle; without flash attention the score matrix's
traffic, less what the L2 cache holds. A card whose board power cannot pay for that tensor work
(L4 at 72 W, RTX 6000 Ada at 300 W, L40S, H100 PCIe) lowers its clock: the work it sustains is its
board power over a per-architecture energy per SM clock of tensor issue (power_limited_rate), whatever
the wave fill. On Hopper, llama.cpp's own kernels (MMQ, FlashAttention) and the 2024 builds' cuBLAS
reach the mma.sync rate, half the wgmma peak (_cublas_kernel).
Time to first token is the prefill of the prompt, ubatch by ubatch, plus one decode step.

Memory per GPU counts the CUDA context, which grows with the SM count (CUDA reserves
stack memory for every thread that can be resident), and `fits` is judged against
usable memory: total minus what the driver reserves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1 << 20

# Bytes per KV-cache element (ggml block sizes: q8_0 = 34 bytes per 32 values,
# q4_0 = 18 bytes per 32 values; f16 = 2 bytes).
KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}

F32 = 4  # activations and logits are f32 in llama.cpp's compute graph
HIDDEN_STATE_BUFFERS = 4  # hidden-size f32 tensors live beside a layer's largest intermediate (compute_buffer_bytes)
# The attention mask (one value per ubatch token and KV cell): built in f32; with flash attention llama.cpp also
# keeps an f16 copy of it (llama-graph.cpp casts the mask for the FlashAttention kernels).
KQ_MASK_BYTES: dict[bool, int] = {False: 4, True: 4 + 2}
# Prompt processing without flash attention: bytes moved per attention score (one head, one cell) by
# llama.cpp's CUDA graph, by the precision KQ is computed in (Engine.kq_precision):
#   f16 (builds of 2024): KQ written in f16 (2) and read back (2), converted to f32 (4), softmax reads and
#     writes it in f32 (4 + 4), converted to f16 for KQV (read 4, write 2), read by the KQV GEMM (2): 24;
#   f32 (current builds: build_attn_mha sets GGML_PREC_F32 on KQ, so cuBLAS writes f32 directly): KQ
#     written in f32 (4), softmax (4 + 4), converted to f16 for KQV (4 + 2), read by the KQV GEMM (2): 20.
SCORE_BYTES_FA_OFF: dict[str, int] = {"f16": 24, "f32": 20}


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
    decode_ops_per_weight: float = 0.0  # integer lane-ops to dequantize and dot one weight (0: not modelled)


@dataclass(frozen=True)
class Device:
    """One GPU. Fields after bandwidth are optional: 0 means unknown, and the parts of the
    model that need them fall back (no compute ceiling, the engine's flat CUDA overhead)."""

    name: str
    memory_mib: int
    bandwidth_gbs: float
    sm_count: int = 0
    clock_mhz: float = 0.0
    int_lanes_per_sm: int = 0
    tensor_flops_per_clk: float = 0.0  # dense FP16 tensor FLOPs per SM per clock
    int8_ops_per_clk: float = 0.0  # dense INT8 tensor ops per SM per clock
    max_threads_per_sm: int = 0
    reserved_mib: float = 0.0  # driver-reserved memory that CUDA cannot allocate
    l2_mib: float = 0.0  # L2 cache: a prompt ubatch's score matrix that fits there never reaches memory
    cublas_tile: tuple[int, int] = (0, 0)  # cuBLAS FP16 GEMM output tile (weight rows, tokens); (0, 0): no waves
    mma_sync_share: float = 1.0  # tensor rate llama.cpp's own mma.sync kernels reach (Hopper: wgmma-only peak)
    fp32_acc_share: float = 1.0  # FP16 tensor rate with FP32 accumulation (GeForce cards: half)
    memory_latency_ns: float = 0.0  # load-to-use latency of device memory (pointer chase); 0: unknown
    board_power_w: float = 0.0  # board power limit (TGP / max TDP); 0: unknown, no power limit modelled
    tensor_nj_per_sm_cycle: float = 0.0  # board energy per SM clock of full-rate tensor work (0: not modelled)
    host_shared_mib: float = 0.0  # unified memory: what the host's idle OS holds of the pool (within reserved_mib)
    read_gbs: float = 0.0  # a streaming read's measured bandwidth (GB/s) where published; 0: unknown

    @property
    def sm_clocks_per_s(self) -> float:
        """SM clock cycles per second over the whole GPU: SMs x clock under load (catalog.GpuSpec.load_clock_mhz)."""
        return self.sm_count * self.clock_mhz * 1e6

    @property
    def int_ops_per_s(self) -> float:
        return self.int_lanes_per_sm * self.sm_clocks_per_s

    @property
    def tensor_flops_per_s(self) -> float:
        return self.tensor_flops_per_clk * self.sm_clocks_per_s

    @property
    def int8_ops_per_s(self) -> float:
        return self.int8_ops_per_clk * self.sm_clocks_per_s

    @property
    def mma_sync_int8_ops_per_clk(self) -> float:
        """Int8 tensor ops per SM per clock of the mma.sync instruction llama.cpp's own kernels issue."""
        return self.int8_ops_per_clk * self.mma_sync_share

    @property
    def usable_mib(self) -> float:
        return self.memory_mib - self.reserved_mib


@dataclass(frozen=True)
class Engine:
    bandwidth_efficiency: float
    per_layer_latency_us: float
    cuda_overhead_mib: float  # per GPU when the GPU's SM count is unknown
    fit_margin_mib: float
    batch_size: int = 512
    context_base_mib: float = 0.0  # CUDA context without the per-thread stacks (0: use cuda_overhead_mib)
    stack_bytes_per_thread: int = 1024  # CUDA's default cudaLimitStackSize
    kv_l2_pass_share: float = 1.0  # decode without flash attention: time of a pass over KV data held in L2, as a
    #                                share of a pass from device memory (see kv_read_factor)
    prefill_efficiency: float = 0.0  # share of tensor throughput prompt processing reaches (0: not modelled)
    prefill_layer_kcycles: float = 0.0  # per layer per ubatch, thousands of core clock cycles (prefill_layer_s)
    prefill_mmq: bool = True  # quantized weights: int8 tensor-core MMQ (llama.cpp since mid-2024), else
    #                           dequantize to FP16 for every ubatch and run an FP16 GEMM (older builds)
    mmq_efficiency: float = 0.0  # share of the int8 tensor throughput MMQ reaches
    mmq_sm_ops_per_clk: float = 0.0  # the most int8 tensor ops per SM per clock MMQ's instruction stream feeds
    #                                  (0: no bound); see mmq_ops_per_clk
    mmq_tile: tuple[int, int] = (0, 0)  # MMQ output tile run in waves (wave_fill); (0, 0): stream-k (llama.cpp#8018)
    kq_precision: str = "f16"  # accumulator of KQ without flash attention (f32: FP32-accumulate rate, 20 bytes/score)
    fa_efficiency: float = 0.0  # share of the tensor rate FlashAttention's kernels reach (0: prefill_efficiency)
    pcie_gbs: float = 25.0  # weights of CPU-resident layers streamed to the GPU for each prompt ubatch
    cpu_gflops: float = 500.0  # matrix throughput of the CPU when no GPU is present
    layer_latency_kcycles: float = 0.0  # per-layer latency in thousands of GPU core clocks (0: the flat
    #                                     per_layer_latency_us); see layer_latency_s
    inflight_kib_per_sm: float = 0.0  # bytes the decode kernels keep in flight per SM, KiB (0: not modelled);
    #                                   see decode_bandwidth
    cublas_sm90: str = "wgmma"  # what cuBLAS's FP16 GEMMs reach on Hopper-class GPUs (mma_sync_share < 1):
    #                             "wgmma": the full tensor rate, no waves modelled; "mma_sync": the sm_80 kernels'
    #                             rate (mma_sync_share) and their 256x128 tile waves (see _cublas_kernel)
    score_sm_cycles: float = 0.0  # without flash attention: SM clock cycles per score element of the kernels
    #                               between KQ and KQV where the score matrix stays in L2 (see _score_seconds)
    moe_layer_kcycles: float = 0.0  # a mixture of experts' layer: the routing kernels' latency on top of
    #                                 layer_latency_kcycles, thousands of core clocks (see layer_latency_s)

    def overhead_mib(self, dev: Device) -> float:
        """CUDA context + runtime buffers on one GPU: a fixed part plus stack memory for every
        thread the GPU can hold resident (SMs x threads per SM x stack size)."""
        if not (self.context_base_mib and dev.sm_count and dev.max_threads_per_sm):
            return self.cuda_overhead_mib
        stacks = dev.sm_count * dev.max_threads_per_sm * self.stack_bytes_per_thread
        return self.context_base_mib + stacks / MIB


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
    logits_every_token: bool = True  # False: only the last token's logits are read (a prompt run one token per
    #                                  ubatch, llama-bench -ub 1), so llama.cpp skips the output layer for the others


@dataclass(frozen=True)
class DeviceUse:
    name: str
    total_mib: float
    layers: int
    weights_mib: float
    kv_cache_mib: float
    compute_mib: float
    overhead_mib: float
    reserved_mib: float = 0.0

    @property
    def usable_mib(self) -> float:
        return self.total_mib - self.reserved_mib

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
    prefill_tok_s: float = 0.0  # prompt processing at the request's depth (0: not modelled)

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

    The allocator reuses a tensor's memory once its last reader has run, so the buffer is the
    larger of two peaks, not their sum. Inside a layer: without flash attention the KQ score
    matrix (ubatch x cells x heads, f32) is materialised and grows with the context; with it,
    attention is tiled and only its output is; the FFN intermediates (gate and up) compete
    with it for the same memory, and hidden-state buffers come on top. At the output layer,
    on the device that has it: the logits of every ubatch token (llama.cpp reserves its
    prompt graph with n_outputs = n_tokens) and the normed hidden state they are computed
    from, by which time the layers' buffers are free. llama.cpp's own logs show the output
    peak exactly: Llama 3 8B at ctx 512 without flash attention, compute buffer 258.50 MiB
    = 512 x 128256 logits + 512 x 4096 hidden, in f32; Qwen2.5 7B at ctx 4096 with it,
    304.00 MiB = 512 x (152064 + 3584) x 4 bytes (benchmarks/calibration.tsv, the compute-buffer note).
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
    hidden = ubatch * arch.hidden * F32
    mask = ubatch * ctx_cells * KQ_MASK_BYTES[flash_attention]
    layer_peak = hidden * HIDDEN_STATE_BUFFERS + mask + max(attention, ffn) if layers else 0.0
    output_peak = ubatch * (arch.vocab + arch.hidden) * F32 if with_output else 0.0
    return max(layer_peak, output_peak)


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
    slots = assign_layers(gpu_layers, [d.usable_mib for d in devices]) if gpu_layers else [0] * len(devices)
    output_on_gpu = gpu_layers > arch.layers
    last = max((i for i, n in enumerate(slots) if n), default=-1)
    uses = []
    for i, (dev, n) in enumerate(zip(devices, slots)):
        has_output = output_on_gpu and i == last
        layers = n - 1 if has_output else n
        weights = layers * per_layer + (output if has_output else 0.0)
        kv = kv_cache_bytes(arch, cells, 1, effective_kv_cache(req), layers=layers)
        compute = compute_buffer_bytes(arch, cells, req.engine.batch_size, req.flash_attention, has_output, layers)
        overhead = req.engine.overhead_mib(dev) if n else 0.0
        uses.append(DeviceUse(dev.name, dev.memory_mib, layers, weights / MIB, kv / MIB, compute / MIB, overhead,
                              dev.reserved_mib))
    return tuple(uses)


def _fits(uses: tuple[DeviceUse, ...], margin_mib: float) -> bool:
    return all(u.used_mib <= u.usable_mib - margin_mib for u in uses if u.layers or u.weights_mib)


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
            candidates.insert(0, (max(req.devices, key=lambda d: d.usable_mib),))
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


def layer_params(arch: Architecture) -> float:
    """Weights of one repeating layer (total minus token embedding and output)."""
    outside = arch.vocab * arch.hidden * (1 if arch.tied_embeddings else 2)
    return max(arch.params_b * 1e9 - outside, 0.0) / arch.layers


def _active(arch: Architecture) -> float:
    return arch.active_params_b / arch.params_b if arch.params_b else 1.0


def _kv_read_bytes(req: FitRequest, depth: int, dev: Device | None = None) -> float:
    """Attention traffic of one layer for one token at `depth` on `dev` (None: the CPU), in bytes at the device
    memory's rate: the K and V cache read once with flash attention, kv_read_factor times without it."""
    kv = kv_cache_bytes(req.arch, min(depth, req.ctx), 1, effective_kv_cache(req), layers=1)
    if req.flash_attention:
        return kv
    return kv * kv_read_factor(req.arch, dev.l2_mib if dev else 0.0, min(depth, req.ctx), req.engine.kv_l2_pass_share)


def kv_read_factor(arch: Architecture, l2_mib: float, cells: int, l2_pass_share: float) -> float:
    """Decode without flash attention: time of the attention products per KV-cache byte, in units of one read of
    that byte from device memory.

    llama.cpp runs KQ and KQV (mul_mat_vec_p021 / mul_mat_vec_nc, or the batched GEMM) once per query head: each
    KV head's K and V are passed over heads / kv_heads times (grouped-query attention: 4 times for Llama 3 8B, 8 for
    70B, once for a model without GQA), by consecutive blocks, so the first pass reads them from device memory and
    the later ones find them in L2 as long as one KV head's K (cells x head_dim x 2 bytes: 1 MiB at depth 4096 for
    head_dim 128) fits there; what does not fit is read from memory again. A pass over L2-resident data costs
    `l2_pass_share` of a pass from memory (fitted: engines.tsv kv_l2_pass_share). The f32 score row (heads x cells
    x 4 bytes written and read) is 3 % of the K/V bytes for Llama 3 8B and is left in that constant."""
    group = arch.heads / arch.kv_heads if arch.kv_heads else 1.0
    one_head = cells * arch.head_dim * 2
    from_memory = max(0.0, 1.0 - l2_mib * MIB / one_head) if one_head else 0.0
    later = group - 1.0
    return 1.0 + later * (from_memory + (1.0 - from_memory) * l2_pass_share)


def decode_tokens_per_second(
    req: FitRequest, uses: tuple[DeviceUse, ...], cpu_layers: int, output_on_cpu: bool
) -> float:
    """Decode speed: per device the slower of memory time (at decode_bandwidth) and integer-compute time, device
    after device, plus each layer's latency."""
    arch, eng = req.arch, req.engine
    active = _active(arch)
    _, per_layer, output = weight_split(arch, req.quant, req.file_bytes)
    kv_cpu = _kv_read_bytes(req, req.depth)
    params_per_byte = layer_params(arch) / per_layer if per_layer else 0.0
    # The output layer sits with the last device holding weights (place()); a token whose logits
    # nobody reads never multiplies it.
    skipped = 0.0 if req.logits_every_token else output
    last = max((i for i, u in enumerate(uses) if u.weights_mib), default=-1)
    seconds = 0.0
    for i, (use, dev) in enumerate(zip(uses, req.devices)):
        weights = (use.weights_mib * MIB - (skipped if i == last and not output_on_cpu else 0.0)) * active
        read = weights + use.layers * _kv_read_bytes(req, req.depth, dev)
        memory_s = read / decode_bandwidth(eng, dev)
        compute_s = 0.0
        if dev.int_ops_per_s and req.quant.decode_ops_per_weight:
            compute_s = weights * params_per_byte * req.quant.decode_ops_per_weight / dev.int_ops_per_s
        seconds += max(memory_s, compute_s)
    cpu_read = cpu_layers * (per_layer * active + kv_cpu) + (output - skipped if output_on_cpu else 0.0)
    seconds += cpu_read / (eng.bandwidth_efficiency * req.ram_bandwidth_gbs * 1e9)
    moe = bool(arch.experts)
    seconds += sum(use.layers * layer_latency_s(eng, dev, moe) for use, dev in zip(uses, req.devices) if use.layers)
    seconds += cpu_layers * eng.per_layer_latency_us * 1e-6
    return 1.0 / seconds


def decode_bandwidth(eng: Engine, dev: Device) -> float:
    """Bytes per second the decode kernels (the mat-vec products, attention over the KV cache) read from device
    memory, and the 2024 builds' prefill copy of the weights to FP16 (one pass over them, as streaming): the lower of
    two ceilings.

    - The memory's own: bandwidth_efficiency x the spec bandwidth (refresh, page misses, the share of a DRAM burst a
      kernel cannot use), or a card's measured read bandwidth where that is lower (memory_bandwidth).
    - Little's law: a memory system returns at most (bytes in flight) / (latency) per second. A mat-vec kernel has one
      token's worth of work per weight, so each thread issues a few loads and waits; what a streaming multiprocessor
      keeps in flight is set by the kernel (threads resident per SM x bytes each has outstanding), not by the GPU:
      Engine.inflight_kib_per_sm, fitted. Over all SMs: sm_count x inflight / memory latency (Device.memory_latency_ns,
      a pointer-chase microbenchmark: data/gpu_memory_latency.tsv).

    On GDDR cards bandwidth per SM is low (RTX 4090: 7.9 GB/s per SM) and the first ceiling binds; HBM parts carry
    two to seven times as much per SM (A100 18, H200 36, B200 54 GB/s) behind a longer latency, so the kernels'
    bytes in flight, not the memory, set the pace there. 0 latency or in-flight bytes: the first ceiling alone."""
    rate = memory_bandwidth(eng, dev)
    if eng.inflight_kib_per_sm and dev.memory_latency_ns and dev.sm_count:
        rate = min(rate, dev.sm_count * eng.inflight_kib_per_sm * 1024 / (dev.memory_latency_ns * 1e-9))
    return rate


def memory_bandwidth(eng: Engine, dev: Device) -> float:
    """Bytes per second device memory delivers to a streaming kernel: bandwidth_efficiency x the spec bandwidth
    (fitted on GDDR and HBM cards, where a streaming read reaches about that share), or less where a read
    microbenchmark of the card measured less (Device.read_gbs, data/gpu_read_bandwidth.tsv: the DGX Spark's LPDDR5x
    delivers 84-90 % of its 273 GB/s)."""
    rate = eng.bandwidth_efficiency * dev.bandwidth_gbs * 1e9
    return min(rate, dev.read_gbs * 1e9) if dev.read_gbs else rate


def layer_latency_s(eng: Engine, dev: Device, moe: bool = False) -> float:
    """Per-layer latency on one GPU: the chain of small dependent kernels of a layer (norms, RoPE, the
    activations' q8_1 quantization, adds, FlashAttention's combine) that are too small to fill the GPU, so
    their time is instruction and memory latency counted in core clock cycles. Current builds (engine
    layer_latency_kcycles) take it in cycles / the GPU's boost clock; older builds keep a flat
    per_layer_latency_us (late-2023 builds paid the host's launch cost per kernel, which no GPU clock
    shortens; the 2024 builds' rows fit no better in cycles: data/engines.tsv). A mixture of experts' layer
    (`moe`) runs more of them: the router's product, its softmax and top-k, the expert weights' gather and
    normalisation, three expert products instead of two dense ones, their weighting and sum
    (Engine.moe_layer_kcycles on top; 0 where no row measures it)."""
    if eng.layer_latency_kcycles and dev.clock_mhz:
        return (eng.layer_latency_kcycles + (eng.moe_layer_kcycles if moe else 0.0)) * 1e3 / (dev.clock_mhz * 1e6)
    return eng.per_layer_latency_us * 1e-6


def prefill_layer_s(eng: Engine, dev: Device) -> float:
    """Per layer and ubatch of prompt processing, the kernels that are neither matrix work nor attention: on the 2024
    builds' cuBLAS path each product's input converted to f16 and its output back to f32, and the dequantize launches;
    small element-wise kernels over activations the L2 cache holds, so their time is counted in core clock cycles
    (Engine.prefill_layer_kcycles / the GPU's boost clock), like current builds' decode latency (layer_latency_s).
    A GPU of unknown clock: 0."""
    if not dev.clock_mhz:
        return 0.0
    return eng.prefill_layer_kcycles * 1e3 / (dev.clock_mhz * 1e6)


def _attention_cells(req: FitRequest, depth: int, chunk: int) -> int:
    """KV cells one prompt ubatch attends to: llama.cpp runs KQ and KQV over every cell up to the end
    of the ubatch (the causal mask only hides the later ones), so a ubatch centred on `depth` sees
    depth + chunk / 2 cells, not `depth`."""
    return min(depth + chunk - chunk // 2, kv_cells(req.ctx, req.parallel))


# The output tile of cuBLAS's sm_80 FP16 kernels (ampere_h16816gemm_256x128_*), which run on Hopper where
# an engine's cuBLAS has no wgmma kernel for the GEMM (Engine.cublas_sm90 "mma_sync").
SM80_CUBLAS_TILE = (256, 128)


def _cublas_kernel(req: FitRequest, dev: Device) -> tuple[float, tuple[int, int]]:
    """(share of the dense FP16 tensor rate, output tile) of cuBLAS's FP16 GEMMs on `dev`.

    On Ampere, Ada and RTX Blackwell cuBLAS's kernels issue mma.sync, which reaches the full rate there
    (mma_sync_share 1), in the architecture's tile (gpu_architectures.tsv). Hopper-class GPUs reach their full
    rate only through wgmma. The 2024 builds' cuBLAS (CUDA 12.1) ran llama.cpp's FP16-accumulate GEMMs on an
    H100 at an A100's rate per SM and clock: the H100 PCIe of XiongjieDai's notebooks ran 1.36-1.40x an A100
    PCIe on all three models, its SM x clock ratio being 1.31 (data/engines.tsv cublas_sm90), i.e. the
    mma.sync rate of sm_80-class kernels (mma_sync_share) in their 256x128 tiles, not wgmma's. Which
    kernels current builds' cuBLAS picks there no row measures: their engines keep the full rate."""
    if req.engine.cublas_sm90 == "mma_sync" and dev.mma_sync_share < 1:
        return dev.mma_sync_share, SM80_CUBLAS_TILE
    return 1.0, dev.cublas_tile


# Board power per SM below which a card's MMQ prompt processing is known to fall well short of the model: the
# llama.cpp scoreboard's RTX 6000 Ada and L40 (2.1 W per SM), RTX PRO 4000 Blackwell (2.0) and PRO 6000 Max-Q (1.6)
# posts measured 14-27 % below it (held out, benchmarks/calibration.tsv), while every GeForce card (3.4 W and up)
# is within 12 %. Not modelled (an energy per busy SM clock fitted on such cards overshot the others), so plans
# on these cards say so.
LOW_POWER_W_PER_SM = 2.5


def _runs_mmq(req: FitRequest, dev: Device) -> bool:
    """Whether the weight products of a prompt run llama.cpp's int8 MMQ kernels on `dev` (quantized weights, an
    engine with MMQ, a GPU with int8 tensor cores); otherwise FP16 GEMMs (cuBLAS) or the CPU."""
    eng = req.engine
    return bool(dev.tensor_flops_per_s and req.quant.name != "F16" and eng.prefill_mmq and dev.int8_ops_per_s
                and eng.mmq_efficiency)


def _matrix_path(req: FitRequest, dev: Device) -> tuple[float, bool, tuple[int, int], float]:
    """(ops/s the weight matrices run at in a full wave and below the power limit, whether an FP16 copy of
    the weights is written first, the GEMM's output tile, the operations per SM per clock of the path's tensor
    instruction at its full issue rate (FP16 FLOPs or int8 ops; mma.sync on Hopper: half the dense rate), for
    power_limited_rate)."""
    eng = req.engine
    if not dev.tensor_flops_per_s:
        return eng.cpu_gflops * 1e9, False, (0, 0), 0.0
    if not _runs_mmq(req, dev):
        share, tile = _cublas_kernel(req, dev)
        rate = eng.prefill_efficiency * dev.tensor_flops_per_s * share
        return rate, req.quant.name != "F16", tile, dev.tensor_flops_per_clk * share
    rate = eng.mmq_efficiency * mmq_ops_per_clk(eng, dev) * dev.sm_clocks_per_s
    return rate, False, eng.mmq_tile, dev.mma_sync_int8_ops_per_clk


def mmq_ops_per_clk(eng: Engine, dev: Device) -> float:
    """Int8 tensor operations per SM per clock that MMQ's products are issued at: the rate of the tensor
    instruction it uses (mma.sync: int8_ops_per_clk x mma_sync_share), but no more than its instruction stream
    feeds (Engine.mmq_sm_ops_per_clk). Besides the MMA, every tile loads its quantized weights to shared memory,
    unpacks them to int8 and applies a scale per block of 32 values; that work takes the same issue slots on every
    SM whatever the width of its tensor cores. MMQ was written and tuned on SMs of 2048 int8 ops per clock (GA10x,
    AD10x, GB20x), where it reaches mmq_efficiency of the tensor rate; an A100's SM (4096) or an H100's mma.sync
    (4096) runs the same tile no faster per clock: the llama.cpp CUDA scoreboard's A100 and H100 pp512 rows
    (benchmarks/calibration.tsv) run at an RTX 3090's and 4090's rate per SM and clock, not twice it."""
    full_rate = dev.mma_sync_int8_ops_per_clk
    return min(full_rate, eng.mmq_sm_ops_per_clk) if eng.mmq_sm_ops_per_clk else full_rate


def power_limited_rate(dev: Device, ops_per_clk: float) -> float:
    """The most tensor operations per second the board's power pays for (inf when not modelled).

    A card at its power limit lowers its clock until its draw fits the limit. The draw that matters is the
    tensor work the kernel issues: an SM clock of tensor issue at the instruction's full rate costs about the
    same energy whatever the precision or instruction (int8 MMA does twice FP16's operations per cycle, Hopper's
    mma.sync half of wgmma's, each at a full issue rate of its own), so the limit pays for board_power_w /
    tensor_nj_per_sm_cycle SM clocks of such issue per second, each worth `ops_per_clk` (the instruction's
    operations per SM clock at its full rate). SMs a GEMM's last wave leaves idle, and issue slots a kernel
    leaves empty (its efficiency), draw (to first order) none of it: below the limit the rate is SMs x clock x
    rate x the kernel's share, at the limit this figure whatever the share. Evidence on the fit rows
    (benchmarks/fit_constants.py): the RTX 6000 Ada (300 W) and L40S (350 W) share AD102's 142 SMs, yet the 70B
    Q4_K_M prompt, whose tiles fill 74 % of them, ran 1.19x faster on the L40S (350/300 = 1.17), the 8B, whose
    tiles fill 51 %, only 1.04x. The RTX 4090's current-build MMQ rows (int8 issue at about a quarter of its
    rate) fit unlimited, which a draw per busy SM clock whatever the work would not allow: fitted that way (1.9
    nJ per busy SM clock on Ada) it caps them by about 13 % and fits the Ada rows worse (rms log error 10.4 %
    against 7.4 %, exploratory scan before the refit). Static and memory power are folded into the
    per-architecture energy (gpu_architectures.tsv, fitted), which is why it is a board figure and not a
    tensor-core one. The voltage scaling (energy per cycle falls at lower clocks) is not modelled: in the same
    scan a draw falling as the 1.5th-3rd power of the clock fit the Ada rows worse than this linear limit
    (7.9-9.5 % against 7.4 %)."""
    if not (dev.board_power_w and dev.tensor_nj_per_sm_cycle and ops_per_clk):
        return float("inf")
    return dev.board_power_w / (dev.tensor_nj_per_sm_cycle * 1e-9) * ops_per_clk


def sustained_rate(dev: Device, rate: float, fill: float, ops_per_clk: float) -> float:
    """Tensor throughput of a kernel whose full-wave rate is `rate` and whose waves keep `fill` of the SMs
    busy: the slower of the SMs' rate and what the board's power allows (power_limited_rate)."""
    return min(rate * fill, power_limited_rate(dev, ops_per_clk))


def layer_matrices(arch: Architecture) -> list[tuple[int, int]]:
    """(output rows, inputs) of one layer's weight matrices: Q, K, V, O, then gate, up and down
    (a mixture of experts' FFN: one expert's, as each expert is its own product)."""
    q, kv = arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim
    return [(q, arch.hidden), (kv, arch.hidden), (kv, arch.hidden), (arch.hidden, q),
            (arch.ffn, arch.hidden), (arch.ffn, arch.hidden), (arch.hidden, arch.ffn)]


def wave_fill(arch: Architecture, dev: Device, tokens: int, tile: tuple[int, int]) -> float:
    """Share of the SMs' time a layer's weight products keep busy when each product's output is cut
    into tiles of `tile` (weight rows x tokens) and the tiles run in waves of one per SM: the last
    wave of every product leaves SMs idle (64 tiles on 82 SMs fill 78 %). Weighted by each matrix's
    work. 1 when the tile is unknown (stream-k kernels) or the SM count is."""
    rows_tile, tokens_tile = tile
    if not (rows_tile and tokens_tile and dev.sm_count):
        return 1.0
    work = busy = 0.0
    for i, (rows, inputs) in enumerate(layer_matrices(arch)):
        # An expert's product sees only the tokens routed to it.
        n = max(tokens * arch.experts_used // arch.experts, 1) if arch.experts and i >= 4 else tokens
        tiles = -(-rows // rows_tile) * -(-n // tokens_tile)
        fill = tiles / (-(-tiles // dev.sm_count) * dev.sm_count)
        work += rows * inputs
        busy += rows * inputs / fill
    return work / busy


# The widest column (token) tile of llama.cpp's MMQ kernels on GPUs with int8 tensor cores (mmq.cuh, mmq_x up to 128).
MMQ_MAX_COLUMN_TILE = 128


def expert_params(arch: Architecture) -> float:
    """Weights one token multiplies in one layer's routed experts (gate, up and down of experts_used experts);
    0 for a dense model."""
    return arch.experts_used * 3 * arch.ffn * arch.hidden if arch.experts else 0.0


def expert_column_share(arch: Architecture, tokens: int) -> float:
    """Share of the MMQ work on a mixture of experts' expert products that multiplies real tokens.

    llama.cpp runs every expert's product of a ubatch in one MMQ launch (mul_mat_id: tokens sorted by expert,
    expert_bounds), with one column tile width for all of them, chosen from the ubatch's token count (mul_mat_q_case:
    the narrowest multiple of 8 that covers the ubatch in the fewest tiles of at most MMQ_MAX_COLUMN_TILE). Each expert
    sees only tokens x experts_used / experts of them (32 of a 512-token ubatch for 8 of 128 experts), but a
    tile's int8 MMAs run over its full width, so most of the work of a part-filled tile is padding. Tiles with no
    token at all are skipped: at small ubatches whole experts get none (experts_hit_share), and the tokens of those
    that do fill their tiles a little more. llama.cpp#26977 (Aug 2026, open) and the RDNA3 change it follows size
    the tile from the mean tokens per expert instead; on NVIDIA cards that gained only 2-14 % at ubatches of 64-256,
    so what a tile costs is mostly loading and dequantizing its weights, which a narrower tile does not save. Either
    way a padded tile is as wide as a dense product's and is counted like one, at MMQ's fitted rate. The June 2024
    build multiplied one expert at a time, without padding, but is counted like current builds: no MoE row measures
    it (that engine only replays its dense calibration rows). 1 for a dense model."""
    if not (arch.experts and arch.experts_used):
        return 1.0
    tiles = -(-tokens // MMQ_MAX_COLUMN_TILE)
    width = -(-tokens // (8 * tiles)) * 8  # the narrowest multiple of 8 that covers the ubatch in `tiles` tiles
    per_expert = tokens * arch.experts_used / arch.experts
    hit = experts_hit_share(arch, tokens)
    per_hit = per_expert / hit  # tokens of an expert that has any
    return per_expert / (hit * -(-per_hit // width) * width)


def _weights_read_share(arch: Architecture, tokens: int) -> float:
    """Share of a layer's weights a ubatch of `tokens` reads: an expert no token is routed to is not read."""
    if not (arch.experts and arch.experts_used):
        return 1.0
    experts_share = min(expert_params(arch) * arch.experts / arch.experts_used / layer_params(arch), 1.0)
    return 1.0 - experts_share * (1.0 - experts_hit_share(arch, tokens))


def experts_hit_share(arch: Architecture, tokens: int) -> float:
    """Expected share of the experts that a ubatch of `tokens` routes at least one token to, each token choosing
    experts_used distinct experts of `experts`, uniformly (real routers favour some experts, which leaves more idle):
    64 % of 128 experts for 16 tokens at 8 each, 87 % for 32, 98 % for 64. Only their tiles run."""
    return 1.0 - (1.0 - arch.experts_used / arch.experts) ** max(tokens, 1)


def _attention_seconds(req: FitRequest, dev: Device, cells: int, chunk: int) -> float:
    """Attention of one prompt token in one layer against `cells` cells: the KQ and KQV products
    (2 FLOPs per head dimension and cell each) run on the tensor cores whatever the weights' type.
    With flash attention llama.cpp's own mma.sync kernels run both at the engine's fa_efficiency (the
    softmax and rescaling between the products), KQ accumulated in f32 (fattn-mma-f16.cuh: float KQ
    tiles; half rate on GeForce cards, Device.fp32_acc_share), KQV in f16. Without it both are cuBLAS
    GEMMs at prefill_efficiency, KQ at the FP32-accumulate rate where the engine computes it in f32,
    and the score matrix makes SCORE_BYTES_FA_OFF bytes of memory traffic per head and cell, less the
    share the L2 cache holds (score_dram_share)."""
    eng = req.engine
    product = 2 * req.arch.heads * req.arch.head_dim * cells  # FLOPs of KQ, and again of KQV
    if not dev.tensor_flops_per_s:
        return 2 * product / (eng.cpu_gflops * 1e9) + _score_seconds(req, dev, cells, chunk)
    # Operations per SM clock at the instruction's full issue rate (power_limited_rate): mma.sync on Hopper
    # halves it. GeForce cards' half-rate FP32 accumulation does not: it is a product limit on the same
    # tensor cores, so each operation costs what an FP16-accumulate one does.
    if req.flash_attention:
        share, efficiency, kq_acc = dev.mma_sync_share, eng.fa_efficiency or eng.prefill_efficiency, dev.fp32_acc_share
    else:
        share, efficiency = _cublas_kernel(req, dev)[0], eng.prefill_efficiency
        kq_acc = dev.fp32_acc_share if eng.kq_precision == "f32" else 1.0
    rate = efficiency * dev.tensor_flops_per_s * share
    ops = dev.tensor_flops_per_clk * share
    return (product / sustained_rate(dev, rate * kq_acc, 1.0, ops)
            + product / sustained_rate(dev, rate, 1.0, ops) + _score_seconds(req, dev, cells, chunk))


def _score_seconds(req: FitRequest, dev: Device, cells: int, chunk: int) -> float:
    """Time of the score matrix's kernels without flash attention (0 with it), per prompt token and layer: the
    kernels between KQ and KQV (softmax with its scale and mask, the conversions) stream heads x cells scores for
    every token, and take the slower of their memory traffic (what of the matrix the L2 cache cannot hold goes to
    device memory: score_dram_share) and their own work on the SMs (Engine.score_sm_cycles per score over all SMs),
    which is what is left when the matrix stays in L2: a 512-token prompt on an A100, H100 or RTX 4090."""
    if req.flash_attention or not dev.bandwidth_gbs:
        return 0.0
    eng = req.engine
    scores = req.arch.heads * cells
    memory_s = scores * SCORE_BYTES_FA_OFF[eng.kq_precision] * score_dram_share(req.arch, dev, cells, chunk) / (
        memory_bandwidth(eng, dev))
    sm_s = scores * eng.score_sm_cycles / dev.sm_clocks_per_s if dev.sm_clocks_per_s else 0.0
    return max(memory_s, sm_s)


def score_dram_share(arch: Architecture, dev: Device, cells: int, chunk: int) -> float:
    """Share of the score matrix's traffic that reaches device memory. The kernels between KQ and KQV
    (f16 to f32, softmax, f32 to f16) each stream the whole ubatch x cells x heads matrix right after
    the previous one wrote it: what of the f32 matrix fits in L2 is read back from there."""
    matrix = chunk * cells * arch.heads * F32
    return max(0.0, 1.0 - dev.l2_mib * MIB / matrix) if matrix else 0.0


def prefill_seconds_per_token(
    req: FitRequest, uses: tuple[DeviceUse, ...], cpu_layers: int, depth: int, chunk: int | None = None
) -> float:
    """One prompt token inside a ubatch of `chunk` tokens (default: a full one) centred on `depth`.

    Per device, layer after layer (a layer split runs the GPUs in turn): the weight matrices
    (2 FLOPs per active weight) on the tensor cores, at least the time to read the weights once
    per ubatch; the attention products and, without flash attention, the score matrix's traffic;
    on the FP16 path of older builds the dequantized copy of every weight written per ubatch (at decode_bandwidth)
    and the conversions of every product's input and output (prefill_layer_s). Once per ubatch and layer, current
    builds also run the chain of small dependent kernels decode waits on (layer_latency_s, a MoE's routing included):
    what makes a 16-token ubatch cost far more per token than a 512-token one. An expert no token of the ubatch is
    routed to is neither multiplied nor read (experts_hit_share).
    Layers left in system RAM have their weights streamed over PCIe once per ubatch.
    Returns 0 when the engine has no prefill constants.
    """
    arch, eng = req.arch, req.engine
    if not eng.prefill_efficiency:
        return 0.0
    ubatch = max(min(eng.batch_size, req.ctx), 1)
    chunk = ubatch if chunk is None else max(min(chunk, ubatch), 1)
    cells = _attention_cells(req, depth, chunk)
    _, per_layer, _ = weight_split(arch, req.quant, req.file_bytes)
    matrix_flops = 2 * layer_params(arch) * _active(arch)
    seconds = 0.0
    for use, dev in zip(uses, req.devices):
        if not use.layers:
            continue
        bandwidth = memory_bandwidth(eng, dev)
        rate, dequantize, tile, ops_per_clk = _matrix_path(req, dev)
        fill = wave_fill(arch, dev, chunk, tile)
        flops = matrix_flops
        if _runs_mmq(req, dev):
            flops += 2 * expert_params(arch) * (1 / expert_column_share(arch, chunk) - 1)
        compute_s = use.layers * flops / sustained_rate(dev, rate, fill, ops_per_clk)
        memory_s = use.weights_mib * MIB * _weights_read_share(arch, chunk) / bandwidth / chunk
        # The FP16 copy: the quantized weights read, two bytes per weight written, by a streaming kernel that keeps
        # only so many bytes in flight per SM, like decode's (decode_bandwidth).
        copy = per_layer + 2 * layer_params(arch)
        dequant_s = use.layers * copy / decode_bandwidth(eng, dev) / chunk if dequantize else 0.0
        attention_s = use.layers * _attention_seconds(req, dev, cells, chunk)
        chain = layer_latency_s(eng, dev, bool(arch.experts)) if eng.layer_latency_kcycles else 0.0
        seconds += (max(compute_s, memory_s) + dequant_s + attention_s + use.layers * prefill_layer_s(eng, dev) / chunk
                    + use.layers * chain / chunk)
    if cpu_layers:
        if any(u.layers for u in uses):
            seconds += cpu_layers * per_layer / (eng.pcie_gbs * 1e9) / chunk
        else:
            seconds += cpu_layers * (matrix_flops + 4 * arch.heads * arch.head_dim * cells) / (eng.cpu_gflops * 1e9)
    return seconds


def time_to_first_token(req: FitRequest, result: FitResult, prompt_tokens: int, start: int = 0) -> float:
    """Seconds from request to first generated token for a `prompt_tokens` prompt (model loaded) that
    follows `start` tokens already in the cache (llama-bench's ppN@dSTART): the prompt in ubatches,
    each at its own depth, then one decode step."""
    if prompt_tokens <= 0 or not result.prefill_tok_s:
        return 0.0
    ubatch = max(min(req.engine.batch_size, req.ctx), 1)
    cpu_layers = req.arch.layers - sum(u.layers for u in result.devices)
    seconds, done = 0.0, 0
    while done < prompt_tokens:
        chunk = min(ubatch, prompt_tokens - done)
        depth = start + done + chunk // 2
        seconds += chunk * prefill_seconds_per_token(req, result.devices, cpu_layers, depth, chunk)
        done += chunk
    return seconds + 1.0 / result.decode_tok_s


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
    all_uses = tuple(by_name.get(id(d), DeviceUse(d.name, d.memory_mib, 0, 0.0, 0.0, 0.0, 0.0, d.reserved_mib))
                     for d in req.devices)
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
    if arch.experts:
        notes.append("mixture of experts: speeds depend on the llama.cpp build (benchmarks/calibration.tsv): 2025 "
                     "builds ran its held-out prompts 1.8-2.2x slower than estimated here (RTX PRO 6000 at 512-token "
                     "ubatches, DGX Spark at 2048), a 2026 build on an RTX 5090 about as estimated; read prefill and "
                     "time to first token as upper bounds, decode as an estimate")
    starved = sorted({d.name for d in req.devices if _runs_mmq(req, d) and d.sm_count and d.board_power_w
                      and d.board_power_w / d.sm_count < LOW_POWER_W_PER_SM})
    if starved:
        notes.append(f"prompt speed: on cards with under {LOW_POWER_W_PER_SM:g} W of board power per SM "
                     f"({', '.join(starved)}) llama.cpp's quantized prompt kernels measured 14-27 % below this "
                     "estimate (benchmarks/calibration.tsv): read it as an upper bound")
    shared = [d for d in req.devices if d.host_shared_mib]
    if shared:
        notes.append(f"unified memory ({', '.join(sorted({d.name for d in shared}))}): the CPU shares the GPU's "
                     f"pool; usable memory leaves {shared[0].host_shared_mib:.0f} MiB to an idle OS, and every other "
                     "program on the host takes its memory from the same pool. Measured on a DGX Spark (held out, "
                     "benchmarks/calibration.tsv): prompts up to 2.2x slower than estimated here")
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
        prefill_tok_s=_rate(prefill_seconds_per_token(req, all_uses, cpu_layers, req.depth)),
    )


def _rate(seconds_per_token: float) -> float:
    return 1.0 / seconds_per_token if seconds_per_token > 0 else 0.0
