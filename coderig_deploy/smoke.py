"""The smoke benchmark seen from the controller: what to run on a host and what to expect.

The benchmark itself lives in `coderig_deploy.bench` (stdlib, runs on the host);
this module turns a Profile and its Plan into its arguments and expectations.
"""

from __future__ import annotations

from pathlib import Path

from coderig_deploy.bench.pyz import build_pyz
from coderig_deploy.bench.verdict import Expectations
from coderig_deploy.profiles import Profile

PYZ_NAME = "coderig-bench.pyz"


def expectations(profile: Profile) -> Expectations:
    """The profile's promises plus the plan's per-GPU memory (GPU index = plan order)."""
    plan = profile.plan
    return Expectations(
        decode_tok_s=profile.expect.decode_tok_s, tolerance_tok_s=profile.expect.tolerance_tok_s,
        gpu_percent=float(profile.expect.gpu_percent), num_ctx=profile.model.num_ctx,
        planned_gpu_mib={i: g.used_mib for i, g in enumerate(plan.per_gpu)},
        chat_ttft_ms=profile.expect.chat_ttft_ms, fim_ttft_ms=profile.expect.fim_ttft_ms)


def editor_args(profile: Profile) -> list[str]:
    """`--editor VARIANT=ROLE` for every model the profile serves, and the TTFT expectations."""
    args: list[str] = []
    for ref in profile.all_models:
        args += ["--editor", f"{ref.variant_name}={ref.role}"]
    for flag, value in (("--expect-chat-ttft-ms", profile.expect.chat_ttft_ms),
                        ("--expect-fim-ttft-ms", profile.expect.fim_ttft_ms)):
        if value is not None:
            args += [flag, f"{value:g}"]
    return args


def bench_model(profile: Profile) -> str:
    """The model the benchmark loads: the profile's num_ctx variant, as users run it."""
    return profile.model.variant_name


def host_args(profile: Profile, runs: int = 5, num_predict: int = 128) -> list[str]:
    """Arguments for `python3 coderig-bench.pyz` on a host of this profile.

    The host computes the verdict too (so a plain ansible-playbook run can fail the
    host on it); the controller recomputes it from the raw result for the reports.
    """
    exp = expectations(profile)
    args = ["--model", bench_model(profile), "--runs", str(runs),
            "--num-predict", str(num_predict), "--expect-decode", f"{exp.decode_tok_s:g}",
            "--tolerance", f"{exp.tolerance_tok_s:g}", "--expect-ctx", str(exp.num_ctx)]
    if exp.planned_gpu_mib:
        args += ["--plan-gpu-mib", ",".join(f"{i}={m}" for i, m in exp.planned_gpu_mib.items())]
    return args + editor_args(profile)


def write_pyz(directory: Path) -> Path:
    """Put the host benchmark zipapp into `directory` (e.g. a rendered project's files/)."""
    return build_pyz(directory / PYZ_NAME)
