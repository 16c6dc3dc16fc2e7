"""Fill-in-the-middle in the simulator: capability from the template, Ollama's refusal text."""

from __future__ import annotations

import pytest

from coderig_deploy.catalog import load_catalog
from coderig_deploy.editor.fim import known_families, supports_fim
from coderig_deploy.sandbox.ollama_sim import insert
from coderig_deploy.sandbox.ollama_sim.names import parse
from coderig_deploy.sandbox.ollama_sim.store import Model
from coderig_deploy.sandbox.synthetic_models import template_for


def _model(tag: str, name: str | None = None) -> Model:
    template, _ = template_for(load_catalog().model(tag))
    return Model(name=parse(name or tag), manifest={}, digest="0" * 64, modified_at=0.0, template=template)


def test_every_catalog_family_has_a_fim_row() -> None:
    families = {m.ollama_name for m in load_catalog().models.values()}
    assert families <= set(known_families())


@pytest.mark.parametrize("tag", ["starcoder2:3b", "qwen2.5-coder:7b", "llama3.1:8b", "deepseek-coder:33b"])
def test_insert_capability_follows_the_template_built_from_the_data(tag: str) -> None:
    model = _model(tag)
    family = tag.split(":")[0]
    assert ("insert" in insert.capabilities(model)) is supports_fim(family)
    assert insert.capabilities(model)[0] == "completion"


def test_refusal_names_the_model_in_full_as_ollama_does() -> None:
    assert insert.refusal(_model("starcoder2:3b")) is None
    assert insert.refusal(_model("llama3.1:8b", "llama3.1:8b")) == \
        "registry.ollama.ai/library/llama3.1:8b does not support insert"
    assert insert.refusal(_model("llama3.1:8b", "10.0.0.1:5000/library/llama3.1:8b")) == \
        "10.0.0.1:5000/library/llama3.1:8b does not support insert"


def test_middle_is_the_known_function_body_or_pass() -> None:
    answers = {"double": "def double(x):\n    return 2 * x\n"}
    assert insert.middle("def double(x):\n    \"\"\"Twice.\"\"\"\n", answers, broken=False) == "    return 2 * x\n"
    assert insert.middle("def double(x):\n", answers, broken=True) == "    return None\n"
    assert insert.middle("x = ", answers, broken=False) == "pass\n"
