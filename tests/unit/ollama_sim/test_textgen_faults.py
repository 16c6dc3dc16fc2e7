import json
from pathlib import Path

import pytest

from coderig_deploy.bench import codecheck
from coderig_deploy.sandbox.ollama_sim import faults, modelfile, textgen
from coderig_deploy.sandbox.ollama_sim.cli import processor

TASKS = Path(__file__).resolve().parents[3] / "coderig_deploy" / "bench" / "tasks"


def _answer(prompt: str, **kw: object) -> textgen.Answer:
    args = {"seed": None, "temperature": 0.0, "num_predict": None, "answers": textgen.load_code_answers(),
            "broken": False}
    args.update(kw)
    return textgen.answer("m:1", prompt, **args)  # type: ignore[arg-type]


def test_temperature_zero_is_deterministic_and_seed_matters_above_it() -> None:
    assert _answer("hello") == _answer("hello")
    assert _answer("hello") != _answer("goodbye")
    a = _answer("hello", temperature=0.7, seed=1)
    assert a == _answer("hello", temperature=0.7, seed=1)
    assert a != _answer("hello", temperature=0.7, seed=2)


def test_num_predict_gives_exactly_that_many_tokens() -> None:
    answer = _answer("tell me", num_predict=37)
    assert len(answer.tokens) == 37 and answer.done_reason == "length"
    free = _answer("tell me")
    assert free.done_reason == "stop" and 24 <= len(free.tokens) <= 70


def test_pieces_reassemble_the_text() -> None:
    text = "def f(x):\n    return x + 1\n"
    assert "".join(textgen.pieces(text)) == text.rstrip()


def _run(code: str, task: dict) -> bool:
    # The benchmark's own code check (tasks hold calls and expected results, not asserts).
    return codecheck.run_check(task["id"], code, task["tests"]).status == "passed"


def _code(text: str) -> str:
    return text.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("path", sorted(TASKS.glob("*.json")), ids=lambda p: p.stem)
def test_shipped_code_tasks_are_answered_right_and_broken_wrong(path: Path) -> None:
    task = json.loads(path.read_text())
    prompt = f"Complete this Python function. Answer with one code block.\n\n{task['prompt']}"
    good = "".join(_answer(prompt).tokens)
    bad = "".join(_answer(prompt, broken=True).tokens)
    assert "```python" in good and _run(_code(good), task)
    assert f"def {task['entry_point']}(" in _code(bad) and not _run(_code(bad), task)


def test_faults_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    assert faults.load(path) == faults.Faults()
    path.write_text("")
    assert faults.load(path) == faults.Faults()
    path.write_text(json.dumps({"slow_factor": 4, "partial_offload": 0.6, "context_override": 2048,
                                "missing_models": ["qwen2.5-coder:14b"], "crash_on_load": True,
                                "broken_output": True}))
    loaded = faults.load(path)
    assert (loaded.slow_factor, loaded.partial_offload, loaded.context_override) == (4.0, 0.6, 2048)
    assert loaded.crash_on_load is True and loaded.broken_output
    assert loaded.is_missing("registry.ollama.ai/library/qwen2.5-coder:14b")
    assert not loaded.is_missing("qwen2.5-coder:32b")
    path.write_text("[1]")
    with pytest.raises(ValueError):
        faults.load(path)


def test_modelfile_parsing() -> None:
    parsed = modelfile.parse('# comment\nFROM qwen2.5-coder:32b\nPARAMETER num_ctx 24576\n'
                             'PARAMETER stop "<|im_end|>"\nPARAMETER stop "<|im_start|>"\n'
                             'SYSTEM """You write code.\nOnly code."""\n')
    assert parsed == {"from": "qwen2.5-coder:32b", "system": "You write code.\nOnly code.",
                      "parameters": {"num_ctx": "24576", "stop": ["<|im_end|>", "<|im_start|>"]}}
    with pytest.raises(modelfile.ModelfileError, match="FROM"):
        modelfile.parse("PARAMETER num_ctx 1\n")
    with pytest.raises(modelfile.ModelfileError, match="unknown command"):
        modelfile.parse("FROM x\nBOGUS y\n")


@pytest.mark.parametrize("size,vram,text", [(100, 100, "100% GPU"), (100, 0, "100% CPU"),
                                             (100, 52, "48%/52% CPU/GPU")])
def test_ps_processor_column(size: int, vram: int, text: str) -> None:
    assert processor(size, vram) == text
