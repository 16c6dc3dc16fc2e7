"""VRAM fit: the model entirely on the GPUs, at the planned context, using what the plan says.

Ground truth per shared/reference/ollama.md: `size_vram == size` in /api/ps (anything
less is a partial CPU offload), `context_length` in /api/ps (a different value means
prompts are silently truncated), and the driver's per-GPU memory use.
"""

from __future__ import annotations

from typing import Any

from coderig_deploy.bench.checks import FAIL, PASS, WARN, Check


def offload_check(ps: dict[str, Any] | None, min_gpu_percent: float = 100.0) -> Check:
    """Pass when the loaded model sits on the GPUs (size_vram == size for 100%)."""
    if ps is None:
        return Check("gpu_offload", FAIL, "the model was not loaded (absent from /api/ps)",
                     None, f"{min_gpu_percent:g}% GPU")
    percent = float(ps["gpu_percent"])
    ok = ps["size_vram"] == ps["size"] if min_gpu_percent >= 100 else percent >= min_gpu_percent
    reason = (f"{ps['processor']} (size_vram {ps['size_vram']} of size {ps['size']} bytes)"
              + ("" if ok else ": part of the model runs from system RAM, several times slower"))
    return Check("gpu_offload", PASS if ok else FAIL, reason, ps["processor"],
                 f"{min_gpu_percent:g}% GPU")


def context_check(ps: dict[str, Any] | None, num_ctx: int | None) -> Check:
    """Pass when /api/ps reports the planned context length."""
    if num_ctx is None:
        return Check("context", PASS, "no context length planned", None, None)
    measured = None if ps is None else ps.get("context_length")
    if ps is None:
        return Check("context", FAIL, "the model was not loaded (absent from /api/ps)",
                     None, num_ctx)
    if measured is None:
        return Check("context", WARN, "the server does not report context_length "
                     "(Ollama older than the context column); cannot confirm", None, num_ctx)
    if measured != num_ctx:
        return Check("context", FAIL, f"context {measured} != planned {num_ctx}: prompts "
                     f"longer than {measured} tokens are silently truncated", measured, num_ctx)
    return Check("context", PASS, f"context {measured} as planned", measured, num_ctx)


def gpu_memory_checks(gpu_memory: dict[str, Any], planned_mib: dict[int, int],
                      tolerance_pct: float = 10.0, tolerance_min_mib: int = 1024) -> list[Check]:
    """One check per planned GPU: the plan fits the usable memory, and the driver-reported
    use is within tolerance of the plan.

    Usable is total minus the driver's reserved memory (what CUDA can allocate), or the
    total where the driver does not report reserved memory. The driver's "used" includes
    its idle baseline and any other process (a desktop), hence a tolerance of
    max(`tolerance_pct` of the plan, `tolerance_min_mib`).
    """
    if not planned_mib:
        return []
    if gpu_memory.get("error"):
        return [Check("vram_gpus", FAIL, f"could not read GPU memory: {gpu_memory['error']}",
                      None, planned_mib)]
    by_index = {int(g["index"]): g for g in gpu_memory.get("gpus", [])}
    return [_one_gpu(index, planned, by_index.get(index), tolerance_pct, tolerance_min_mib)
            for index, planned in sorted(planned_mib.items())]


def _one_gpu(index: int, planned: int, gpu: dict[str, Any] | None, pct: float,
             min_mib: int) -> Check:
    name = f"vram_gpu{index}"
    if gpu is None:
        return Check(name, FAIL, f"GPU {index} is planned but the driver does not show it",
                     None, planned)
    short = _short_of_usable(index, planned, gpu)
    if short:
        return Check(name, FAIL, short, gpu.get("used_mib"), planned)
    used = gpu.get("used_mib")
    if used is None:
        return Check(name, WARN, f"GPU {index} does not report memory use", None, planned)
    tol = max(round(planned * pct / 100), min_mib)
    expected = f"{planned} ± {tol} MiB"
    if abs(used - planned) <= tol:
        return Check(name, PASS, f"GPU {index} uses {used} MiB, plan {expected}", used, planned)
    return Check(name, WARN, f"GPU {index} uses {used} MiB, outside plan {expected}",
                 used, planned)


def _short_of_usable(index: int, planned: int, gpu: dict[str, Any]) -> str | None:
    """Why the plan cannot fit this GPU's usable memory, or None when it can."""
    total, reserved = gpu.get("total_mib"), gpu.get("reserved_mib")
    if total is None:
        return None
    usable = total - (reserved or 0)
    if planned <= usable:
        return None
    where = f"total {total} - reserved {reserved}" if reserved is not None else "total"
    return (f"GPU {index}: the plan needs {planned} MiB but only {usable} MiB are usable "
            f"({where}): the model will not fit entirely on this GPU")
