"""litellm.completion / acompletion (streaming too) through the adapter, against a real llama.cpp server
(replayed from cassettes by default; `pytest --live` re-runs them for real)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import litellm
import pytest

import litellm_llamafile

from .support.data import FINISH, GREEDY, SEARCH, SYSTEM, TASK
from .support.servers import RECORDING_API_KEY, SentRequest, Servers

pytestmark = pytest.mark.vcr


def chat_requests(sent: list[SentRequest]) -> list[dict[str, Any]]:
    return [r.body for r in sent if r.path == "/v1/chat/completions"]


def test_llamafile_prefix_reaches_the_adapter_and_folds_system_on_the_wire(
    servers: Servers, sent: list[SentRequest]
) -> None:
    response = litellm.completion(
        model="llamafile/mistral-7b-instruct",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}],
        api_base=servers.url("mistral"),
        max_tokens=24,
        **GREEDY,
    )
    assert len(chat_requests(sent)) == 1  # the adapter's driver sent it, not LiteLLM's passthrough
    sent = chat_requests(sent)[-1]["messages"]
    assert sent == [{"role": "user", "content": f"{SYSTEM}\n\n{TASK}"}]  # folded, not dropped
    assert isinstance(response, litellm.ModelResponse)
    assert isinstance(response.choices[0].message.content, str)  # SmolLM2 is weak in Mistral format
    assert response.usage.prompt_tokens > 0


def test_no_key_is_invented_when_none_is_configured(servers: Servers, sent: list[SentRequest]) -> None:
    litellm.completion(
        model="llamafile/smol",
        messages=[{"role": "user", "content": "Hi"}],
        api_base=servers.url("chatml"),
        max_tokens=4,
        **GREEDY,
    )
    assert sent and all("authorization" not in {k.lower() for k in r.headers} for r in sent)


def test_plain_chat_with_a_system_prompt_on_chatml(servers: Servers, sent: list[SentRequest]) -> None:
    response = litellm.completion(
        model="llamafile/smollm2",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}],
        api_base=servers.url("chatml") + "/v1",  # a trailing /v1 is accepted
        max_tokens=32,
        **GREEDY,
    )
    sent = chat_requests(sent)[-1]["messages"]
    assert sent[0] == {"role": "system", "content": SYSTEM}  # ChatML accepts system: not mangled
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.completion_tokens > 0


@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_stream_assembles_into_the_non_streamed_message(servers: Servers, role: str) -> None:
    kwargs: dict[str, Any] = {
        "model": "llamafile/smol",
        "messages": [{"role": "user", "content": TASK}],
        "api_base": servers.url(role),
        "max_tokens": 24,
        **GREEDY,
    }
    whole = litellm.completion(**kwargs)
    chunks = list(litellm.completion(stream=True, **kwargs))
    built = litellm.stream_chunk_builder(chunks)
    assert built is not None
    assert built.choices[0].message.content == whole.choices[0].message.content
    assert built.choices[0].finish_reason == whole.choices[0].finish_reason
    assert built.usage.prompt_tokens == whole.usage.prompt_tokens  # the server's usage, not an estimate


@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_forced_tool_call_is_a_valid_openai_tool_call(servers: Servers, role: str) -> None:
    response = litellm.completion(
        model="llamafile/smol",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}],
        tools=[SEARCH, FINISH],
        tool_choice={"type": "function", "function": {"name": "web_search"}},
        api_base=servers.url(role),
        max_tokens=160,
        **GREEDY,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "web_search"
    assert isinstance(json.loads(call.function.arguments)["query"], str)


@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_streamed_tool_call_equals_the_non_streamed_one(servers: Servers, role: str) -> None:
    kwargs: dict[str, Any] = {
        "model": "llamafile/smol",
        "messages": [{"role": "user", "content": TASK}],
        "tools": [SEARCH, FINISH],
        "tool_choice": "required",
        "api_base": servers.url(role),
        "max_tokens": 160,
        # Both requests evaluate the prompt from scratch: llama-server's greedy reply to a prompt it has
        # cached can differ from its reply to the same prompt evaluated fresh (batching numerics).
        "cache_prompt": False,
        **GREEDY,
    }
    whole = litellm.completion(**kwargs).choices[0]
    chunks = list(litellm.completion(stream=True, **kwargs))
    built = litellm.stream_chunk_builder(chunks).choices[0]
    assert built.finish_reason == whole.finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in built.message.tool_calls] == [
        (c.function.name, json.loads(c.function.arguments)) for c in whole.message.tool_calls
    ]
    assert not built.message.content  # no fence or marker leaked into content


def test_multi_turn_with_tool_results_is_accepted_by_a_strict_template(
    servers: Servers, sent: list[SentRequest]
) -> None:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": TASK},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "web_search", "arguments": '{"query": "Roman dodecahedron"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "web_search", "arguments": '{"query": "dodecahedron purpose"}'},
                },
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_a",
            "content": "Small hollow bronze objects, 2nd-4th century.",
        },
        {"role": "tool", "tool_call_id": "call_b", "content": "Their purpose is unknown."},
    ]
    response = litellm.completion(
        model="llamafile/smol",
        messages=messages,
        tools=[SEARCH, FINISH],
        api_base=servers.url("mistral"),
        max_tokens=48,
        **GREEDY,
    )
    assert response.choices[0].message.content or response.choices[0].message.tool_calls
    sent = chat_requests(sent)[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert "call_a" in sent[2]["content"] and "call_b" in sent[2]["content"]


def test_async_and_async_streaming(servers: Servers) -> None:
    kwargs: dict[str, Any] = {
        "model": "llamafile/smol",
        "messages": [{"role": "user", "content": "Name one Roman emperor."}],
        "api_base": servers.url("chatml"),
        "max_tokens": 16,
        **GREEDY,
    }

    async def both() -> tuple[Any, Any]:
        whole = await litellm.acompletion(**kwargs)
        stream = await litellm.acompletion(stream=True, **kwargs)
        return whole, litellm.stream_chunk_builder([chunk async for chunk in stream])

    whole, built = asyncio.run(both())
    assert whole.choices[0].message.content
    assert built.choices[0].message.content == whole.choices[0].message.content


def test_key_is_sent_as_bearer_and_never_shown(servers: Servers) -> None:
    url = servers.url("keyed")
    with pytest.raises(litellm.AuthenticationError) as missing:
        litellm.completion(
            model="llamafile/smol", messages=[{"role": "user", "content": "Hi"}], api_base=url, max_tokens=4
        )
    assert RECORDING_API_KEY not in str(missing.value)
    with pytest.raises(litellm.AuthenticationError) as wrong:
        litellm.completion(
            model="llamafile/smol",
            messages=[{"role": "user", "content": "Hi"}],
            api_base=url,
            api_key="sk-wrong-key",
            max_tokens=4,
        )
    assert "sk-wrong-key" not in str(wrong.value)
    ok = litellm.completion(
        model="llamafile/smol",
        messages=[{"role": "user", "content": "Hi"}],
        api_base=url,
        api_key=RECORDING_API_KEY,
        max_tokens=4,
    )
    assert ok.choices[0].message.content is not None


def test_prompt_longer_than_the_context_is_a_context_window_error(servers: Servers) -> None:
    long_text = "dodecahedron " * 3000  # > 2048 tokens of context
    with pytest.raises(litellm.ContextWindowExceededError):
        litellm.completion(
            model="llamafile/smol",
            messages=[{"role": "user", "content": long_text}],
            api_base=servers.url("chatml"),
            max_tokens=4,
        )


def test_bad_input_is_a_typed_error_before_any_request(servers: Servers) -> None:
    with pytest.raises(litellm.BadRequestError, match=r"messages\[1\]"):
        litellm.completion(
            model="llamafile/smol",
            messages=[
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": ""}}]},
            ],
            api_base=servers.url("chatml"),
        )


def test_register_is_idempotent() -> None:
    first = litellm_llamafile.register()
    assert litellm_llamafile.register() is first
    assert [e["provider"] for e in litellm.custom_provider_map].count("llamafile") == 1
