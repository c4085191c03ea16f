"""Unit tests of contract/registry/schema.py: prompt versions, salt, rendering, parameters."""

from __future__ import annotations

from contract.registry.schema import Parameters, PromptVersion


def test_salt_is_the_experiment_or_the_version() -> None:
    base = {"status": "production", "model": "m@v1", "template": "{question}"}
    assert PromptVersion(name="rag", version="v2", **base).salt == "rag:v2"
    assert PromptVersion(name="rag", version="v2", experiment="exp-1", **base).salt == "exp-1"


def make_prompt(*, system: str = "", template: str) -> PromptVersion:
    """A production prompt version with the given texts."""
    return PromptVersion(
        name="rag",
        version="v1",
        status="production",
        model="m@v1",
        system=system,
        template=template,
    )


def test_render_fills_system_and_template() -> None:
    prompt = make_prompt(system="Use {context}.", template="Q: {question}\nC: {context}")
    assert prompt.render(question="Why?", context="[1] Doc: text") == [
        {"role": "system", "content": "Use [1] Doc: text."},
        {"role": "user", "content": "Q: Why?\nC: [1] Doc: text"},
    ]


def test_render_without_system_sends_only_the_user_message() -> None:
    assert make_prompt(template="{question}").render(question="Why?", context="") == [
        {"role": "user", "content": "Why?"}
    ]


def test_render_replaces_placeholders_once() -> None:
    prompt = make_prompt(template="Context: {context}\nQuestion: {question}")
    messages = prompt.render(question="What is {context}?", context="SECRET {question}")
    assert messages[-1]["content"] == "Context: SECRET {question}\nQuestion: What is {context}?"


def test_model_reference_parts() -> None:
    prompt = PromptVersion(
        name="rag",
        version="v1",
        status="production",
        model="gpt.4o-mini@v2025-08",
        template="{question}",
    )
    assert (prompt.model_name, prompt.model_version) == ("gpt.4o-mini", "v2025-08")


def test_parameters_prompt_overrides_model() -> None:
    model = Parameters(
        temperature=0.7, max_tokens=160, seed=7, extra_body={"top_k": 2, "min_score": 0.35}
    )
    prompt = Parameters(temperature=0.0, extra_body={"top_k": 1})
    merged = prompt.merged_over(model)
    # 0.0 is a value, not "unset": it still overrides the model's 0.7.
    assert merged.temperature == 0.0
    assert merged.max_tokens == 160
    assert merged.seed == 7
    assert merged.top_p is None
    assert merged.extra_body == {"top_k": 1, "min_score": 0.35}


def test_parameters_merge_leaves_both_sides_unchanged() -> None:
    model = Parameters(extra_body={"top_k": 2})
    prompt = Parameters(extra_body={"min_score": 0.5})
    assert prompt.merged_over(model).extra_body == {"top_k": 2, "min_score": 0.5}
    assert model.extra_body == {"top_k": 2}
    assert prompt.extra_body == {"min_score": 0.5}


# --- the store: hot reload that never drops the last good registry ---------------------------
