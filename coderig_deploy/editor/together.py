"""Several models side by side (a chat model and a FIM model): do they fit together?

Ollama keeps at most OLLAMA_MAX_LOADED_MODELS models loaded (0 = auto: 3 x GPU count,
reference/ollama.md) and evicts a model when the next one does not fit beside it
(ollama/ollama#4855): both limits must hold, or the editor's models take turns
loading (seconds each) instead of answering.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coderig_deploy.planner import Plan, make_plan

if TYPE_CHECKING:
    from coderig_deploy.profiles import ModelRef, Profile


def model_plan(profile: "Profile", ref: "ModelRef") -> Plan:
    """The plan of one of the profile's models on its hardware and Ollama settings."""
    o = profile.ollama
    return make_plan(ref.tag, [profile.hardware.gpu] * profile.hardware.count, ref.num_ctx,
                     kv_cache=o.kv_cache_type, flash_attention=o.flash_attention, parallel=o.num_parallel)


def loaded_limit(profile: "Profile") -> int:
    """OLLAMA_MAX_LOADED_MODELS as Ollama reads it (0 = 3 x GPU count)."""
    return profile.ollama.max_loaded_models or 3 * profile.hardware.count


def per_gpu_mib(plans: list[Plan]) -> list[tuple[int, int, int]]:
    """(used, usable, margin) MiB per GPU index with every plan loaded at once: usable is what CUDA can
    allocate (total less driver-reserved), against which each plan's own fit is judged too."""
    out = []
    for index, gpu in enumerate(plans[0].per_gpu):
        used = sum(p.per_gpu[index].used_mib for p in plans if index < len(p.per_gpu))
        out.append((used, gpu.usable_mib, plans[0].margin_mib))
    return out


def together_problem(profile: "Profile") -> str | None:
    """Why the profile's models cannot stay loaded together, or None when they can."""
    refs = profile.all_models
    if len(refs) < 2:
        return None
    names = [r.variant_name for r in refs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"models: {', '.join(twice)} is listed twice (same model and num_ctx)"
    limit = loaded_limit(profile)
    if limit < len(refs):
        return (f"ollama.max_loaded_models is {profile.ollama.max_loaded_models} but the profile serves "
                f"{len(refs)} models side by side (model + models): set it to at least {len(refs)}")
    return memory_problem([model_plan(profile, r) for r in refs])


def memory_problem(plans: list[Plan]) -> str | None:
    """Why these plans (one per model, on the same GPUs) do not fit in GPU memory side by side, or None."""
    over = [f"GPU {i} would hold {used} MiB of its usable {usable} ({margin} MiB must stay free)"
            for i, (used, usable, margin) in enumerate(per_gpu_mib(plans)) if used > usable - margin]
    if over:
        return f"the {len(plans)} models do not fit in GPU memory together: " + "; ".join(over)
    return None


def together_mib(profile: "Profile") -> list[dict[str, int]]:
    """Per GPU: MiB in use with every model of the profile loaded, and the card's total."""
    # the main model's plan is the profile's own (cached); only the others are planned here
    plans = [profile.plan, *(model_plan(profile, r) for r in profile.models)]
    return [{"gpu": i, "used_mib": used, "usable_mib": usable, "total_mib": plans[0].per_gpu[i].total_mib}
            for i, (used, usable, _) in enumerate(per_gpu_mib(plans))]


def together_line(profile: "Profile") -> str:
    """One line for `profiles show`: the models side by side and what they hold together."""
    gpus = ", ".join(f"GPU {g['gpu']} {g['used_mib']} / {g['total_mib']} MiB" for g in together_mib(profile))
    return (f"together: {len(profile.all_models)} models loaded at once (OLLAMA_MAX_LOADED_MODELS="
            f"{profile.ollama.max_loaded_models}): {gpus}")
