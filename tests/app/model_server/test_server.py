"""The embedded model server through the official `openai` SDK, as any hosted-model client would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from contract.files import REPO_ROOT
from scripts.toolkit.processes import ManagedProcess, free_port, python_module

pytestmark = pytest.mark.integration

REPO = REPO_ROOT
API_KEY = "model-server-key-0123456789"
CONTEXT = (
    "[1] Plans and Pricing: The Team plan costs $8 per user per month when billed annually. "
    "The Business plan costs $15 per user per month when billed annually. "
    "The Free plan allows up to 3 members in a workspace.\n"
    "[2] Refund Policy: Annual plans can be refunded within 30 days of purchase. "
    "Monthly plans are not refunded for partial months.\n"
    "[3] Support Hours: Support answers tickets within one business day. "
    "Enterprise customers get a dedicated support manager."
)
MESSAGES: list[ChatCompletionMessageParam] = [
    {
        "role": "system",
        "content": "Answer only from the numbered context documents and cite them as [n].",
    },
    {
        "role": "user",
        "content": f"Context:\n{CONTEXT}\n\nQuestion: How much does the Team plan cost "
        "per user when billed annually?",
    },
]


@pytest.fixture
def client(model_server: ManagedProcess) -> Iterator[openai.OpenAI]:
    """An SDK client for the session's model server, without retries (failures show at once)."""
    with openai.OpenAI(base_url=f"{model_server.url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[ManagedProcess]:
    """A second model server that requires `API_KEY` as a Bearer token."""
    port = free_port()
    proc = python_module(
        "model-server-keyed",
        "app.model_server",
        port=port,
        args=["--port", str(port), "--api-key", API_KEY],
        log_dir=tmp_path,
        cwd=REPO,
    )
    try:
        proc.start().wait_http("/healthz")
        yield proc
    finally:
        proc.stop()


def complete(client: openai.OpenAI, *, extra_body: dict[str, object] | None = None) -> str:
    """The answer text of one non-streaming call with MESSAGES."""
    response = client.chat.completions.create(
        model="extractive-base", messages=MESSAGES, extra_body=extra_body
    )
    text = response.choices[0].message.content
    assert isinstance(text, str)
    return text


def test_chat_completion_answers_from_context_with_usage(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="extractive-base",
        messages=MESSAGES,
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert "$8" in choice.message.content
    assert "[1]" in choice.message.content
    assert choice.finish_reason == "stop"
    assert response.model == "extractive-base"
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streaming_matches_the_non_streaming_answer(client: openai.OpenAI) -> None:
    expected = complete(client)
    stream = client.chat.completions.create(
        model="extractive-base",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish_reasons: list[str] = []
    usages = []
    for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason is not None:
                finish_reasons.append(choice.finish_reason)
    assert len([p for p in pieces if p]) > 1, "the answer should arrive in several chunks"
    assert "".join(pieces) == expected
    assert finish_reasons == ["stop"]
    assert len(usages) == 1
    assert usages[0].completion_tokens > 0
    assert usages[0].total_tokens == usages[0].prompt_tokens + usages[0].completion_tokens


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(
            model="gpt-nonexistent",
            messages=MESSAGES,
        )


def test_more_than_one_choice_is_refused(client: openai.OpenAI) -> None:
    # One choice for `n=2` would pass silently for two; a clear 400 says what is supported.
    with pytest.raises(openai.BadRequestError, match="n=1") as caught:
        client.chat.completions.create(model="extractive-base", messages=MESSAGES, n=2)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "n"
    assert error["type"] == "invalid_request_error"


def test_models_list_names_both_models(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"extractive-base", "extractive-mini"} <= ids


def test_top_k_changes_answer_length(client: openai.OpenAI) -> None:
    one = complete(client, extra_body={"top_k": 1})
    three = complete(client, extra_body={"top_k": 3})
    assert one != three
    assert len(three) > len(one)
    assert three.startswith(one), "more sentences, best one first"


def test_api_key_is_enforced(keyed_server: ManagedProcess) -> None:
    url = f"{keyed_server.url}/v1"
    with openai.OpenAI(base_url=url, api_key="wrong-key", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            complete(wrong)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
    with openai.OpenAI(base_url=url, api_key=API_KEY, max_retries=0) as right:
        assert "$8" in complete(right)
