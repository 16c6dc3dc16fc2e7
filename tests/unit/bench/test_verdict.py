"""The verdict: pass, and fail with the right reason for each way a host can fall short."""

import copy

import pytest

from coderig_deploy.bench.verdict import Expectations, judge

GIB = 2**30
GOOD = {
    "error": None, "ollama_version": "0.33.0", "config": {"num_predict": 128},
    "runs": [{"eval_count": 128}] * 3,
    "summary": {"decode_tok_s": {"n": 3, "mean": 38.0, "median": 38.0, "stdev": 0.4}},
    "ps": {"size": 20 * GIB, "size_vram": 20 * GIB, "context_length": 32768,
           "gpu_percent": 100.0, "processor": "100% GPU"},
    "gpu_memory": {"source": "nvidia-smi", "error": None,
                   "gpus": [{"index": 0, "used_mib": 21000}, {"index": 1, "used_mib": 19500}]},
    "code_check": [{"task": "t", "status": "passed", "detail": "ok", "isolation": "netns"}],
}
EXP = Expectations(decode_tok_s=40, tolerance_tok_s=5, num_ctx=32768,
                   planned_gpu_mib={0: 20500, 1: 20000})


def _with(**changes) -> dict:
    result = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node = result
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return result


def _status(verdict: dict, name: str) -> str:
    return next(c["status"] for c in verdict["checks"] if c["name"] == name)


def test_good_host_passes_every_check() -> None:
    verdict = judge(GOOD, EXP)
    assert verdict["status"] == "pass" and verdict["reasons"] == []
    names = [c["name"] for c in verdict["checks"]]
    assert names == ["service", "decode_speed", "generation_length", "gpu_offload", "context",
                     "vram_gpu0", "vram_gpu1", "code_check"]


@pytest.mark.parametrize("median,status", [(35.0, "pass"), (34.9, "fail"), (80.0, "pass")])
def test_speed_floor_is_expected_minus_tolerance(median: float, status: str) -> None:
    verdict = judge(_with(summary__decode_tok_s__median=median), EXP)
    assert _status(verdict, "decode_speed") == status


def test_too_slow_reason() -> None:
    verdict = judge(_with(summary__decode_tok_s__median=9.5), EXP)
    assert verdict["status"] == "fail"
    assert verdict["reasons"][0].startswith("decode_speed: too slow: median 9.5 tok/s")


def test_partial_offload_fails() -> None:
    verdict = judge(_with(ps__size_vram=12 * GIB, ps__processor="40%/60% CPU/GPU"), EXP)
    assert _status(verdict, "gpu_offload") == "fail"
    assert "40%/60% CPU/GPU" in " ".join(verdict["reasons"])


def test_model_not_loaded_fails_offload_and_context() -> None:
    verdict = judge(_with(ps=None), EXP)
    assert _status(verdict, "gpu_offload") == "fail" and _status(verdict, "context") == "fail"


def test_wrong_context_fails_with_truncation_reason() -> None:
    verdict = judge(_with(ps__context_length=2048), EXP)
    assert _status(verdict, "context") == "fail"
    assert any("context 2048 != planned 32768" in r for r in verdict["reasons"])


def test_unreported_context_only_warns() -> None:
    verdict = judge(_with(ps__context_length=None), EXP)
    assert verdict["status"] == "warn"


def test_code_check_failure_and_no_code_fail() -> None:
    bad = [{"task": "a", "status": "failed", "detail": "AssertionError", "isolation": "netns"},
           {"task": "b", "status": "no_code", "detail": "none", "isolation": "netns"}]
    verdict = judge(_with(code_check=bad), EXP)
    assert _status(verdict, "code_check") == "fail"
    assert "0/2 passed" in " ".join(verdict["reasons"])


def test_code_check_without_isolation_is_skipped_and_listed() -> None:
    detail = "no isolation: unshare (util-linux) is not installed; the answer was not run"
    skipped = [{"task": t, "status": "skipped", "detail": detail, "isolation": "none"}
               for t in ("a", "b")]
    verdict = judge(_with(code_check=skipped), EXP)
    check = next(c for c in verdict["checks"] if c["name"] == "code_check")
    assert (check["status"], check["measured"]) == ("skip", "skipped")
    assert check["reason"] == "skipped: " + detail
    assert verdict["reasons"] == ["code_check: skipped: " + detail]


def test_a_code_less_answer_still_fails_when_the_rest_were_skipped() -> None:
    results = [{"task": "a", "status": "no_code", "detail": "none", "isolation": "none"},
               {"task": "b", "status": "skipped", "detail": "no isolation: x", "isolation": "none"}]
    verdict = judge(_with(code_check=results), EXP)
    assert verdict["status"] == "fail" and _status(verdict, "code_check") == "fail"


def test_service_down_fails_and_skips_the_rest() -> None:
    verdict = judge({"error": "cannot reach Ollama at http://127.0.0.1:11434"}, EXP)
    assert verdict["status"] == "fail"
    assert _status(verdict, "service") == "fail" and _status(verdict, "decode_speed") == "skip"


@pytest.mark.parametrize("total,status", [(21400, "pass"), (21000, "fail")])
def test_the_plan_must_fit_total_minus_reserved(total: int, status: str) -> None:
    # GPU 0 plans 20500 MiB; 615 MiB reserved by the driver are not usable.
    gpus = [{"index": 0, "used_mib": 20400, "total_mib": total, "reserved_mib": 615},
            {"index": 1, "used_mib": 19500}]
    verdict = judge(_with(gpu_memory__gpus=gpus), EXP)
    assert _status(verdict, "vram_gpu0") == status and _status(verdict, "vram_gpu1") == "pass"
    if status == "fail":
        assert ("vram_gpu0: GPU 0: the plan needs 20500 MiB but only 20385 MiB are usable "
                "(total 21000 - reserved 615)") in verdict["reasons"][0]


def test_each_gpu_is_checked_on_its_own() -> None:
    gpus = [{"index": 0, "used_mib": 21000}, {"index": 1, "used_mib": 4000}]
    verdict = judge(_with(gpu_memory__gpus=gpus), EXP)
    assert _status(verdict, "vram_gpu0") == "pass" and _status(verdict, "vram_gpu1") == "warn"


def test_planned_gpu_missing_from_driver_fails() -> None:
    verdict = judge(_with(gpu_memory__gpus=[{"index": 0, "used_mib": 21000}]), EXP)
    assert _status(verdict, "vram_gpu1") == "fail"


def test_unreadable_gpu_memory_fails() -> None:
    verdict = judge(_with(gpu_memory__error="nvidia-smi not found", gpu_memory__gpus=[]), EXP)
    assert _status(verdict, "vram_gpus") == "fail"


def test_short_runs_warn() -> None:
    verdict = judge(_with(runs=[{"eval_count": 128}, {"eval_count": 12}]), EXP)
    assert verdict["status"] == "warn" and _status(verdict, "generation_length") == "warn"
