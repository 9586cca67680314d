"""Pure request shaping: settings, tool_choice, the constraint schema/grammar, the payload."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

from litellm_llamafile.core.settings import LlamafileSettings, TemplateName, normalize_api_base
from litellm_llamafile.flows.chat_answer import usage_from
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.prompt.bounds import bounded
from litellm_llamafile.prompt.constraints import call_schema
from litellm_llamafile.prompt.conversation import Conversation, affinity_slot
from litellm_llamafile.prompt.grammar import grammar_for_schema, prose_or_call_grammar
from litellm_llamafile.prompt.tools import ToolChoice, normalize_tool_choice, tool_instructions

SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search.",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["q"],
        },
    },
}
FINISH = {
    "type": "function",
    "function": {"name": "finish", "parameters": {"type": "object", "properties": {}}},
}
USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8081/v1", "http://127.0.0.1:8081"),  # a suffix, never characters
        ("http://127.0.0.1:8081/v1/", "http://127.0.0.1:8081"),
        ("http://host/llama/v1", "http://host/llama"),
    ],
)
def test_api_base_accepts_a_trailing_v1(given: str, root: str) -> None:
    assert normalize_api_base(given) == root


def test_settings_precedence_call_then_environment_then_default() -> None:
    env = {
        "LLAMAFILE_API_BASE": "http://env:1",
        "LLAMAFILE_API_KEY": "env-key",
        "LLAMAFILE_TEMPLATE": "mistral",
    }
    assert LlamafileSettings.resolve(environ={}).api_base == "http://127.0.0.1:8080"
    assert LlamafileSettings.resolve(environ={}).api_key is None  # never invented
    from_env = LlamafileSettings.resolve(environ=env)
    assert (from_env.api_base, from_env.template) == ("http://env:1", TemplateName.MISTRAL)
    explicit = LlamafileSettings.resolve(
        api_base="http://call:2/v1", api_key="call-key", options={"llamafile_template": "chatml"}, environ=env
    )
    assert explicit.api_base == "http://call:2"
    assert explicit.auth_headers() == {"Authorization": "Bearer call-key"}
    assert explicit.template is TemplateName.CHATML
    assert "call-key" not in repr(explicit)  # secrets stay out of reprs and logs


def test_bad_settings_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="template"):
        LlamafileSettings.resolve(options={"llamafile_template": "gpt"}, environ={})


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, ToolChoice("auto")),
        ("auto", ToolChoice("auto")),
        ("none", ToolChoice("none")),
        ("required", ToolChoice("required")),
        ({"type": "function", "function": {"name": "finish"}}, ToolChoice("named", "finish")),
    ],
)
def test_tool_choice_forms(choice: object, expected: ToolChoice) -> None:
    assert normalize_tool_choice(choice, [SEARCH, FINISH]) == expected


def test_a_named_tool_that_is_not_offered_is_a_bad_request() -> None:
    with pytest.raises(litellm.BadRequestError, match="nope"):
        build_chat_request(
            "m",
            Conversation.of(USER),
            {"tools": [SEARCH], "tool_choice": {"function": {"name": "nope"}}},
            RequestProfile(strategy=TemplateName.CHATML),
        )


def test_tool_choice_none_sends_no_tools_and_no_instructions() -> None:
    request = build_chat_request(
        "m",
        Conversation.of(USER),
        {"tools": [SEARCH], "tool_choice": "none"},
        RequestProfile(strategy=TemplateName.CHATML),
    )
    assert "tools" not in request.payload and not request.parses_tools
    assert request.messages == USER


def test_auto_adds_instructions_but_no_constraint() -> None:
    request = build_chat_request(
        "m", Conversation.of(USER), {"tools": [SEARCH, FINISH]}, RequestProfile(strategy=TemplateName.CHATML)
    )
    assert request.messages[0]["role"] == "system"
    assert request.messages[0]["content"] == tool_instructions([SEARCH, FINISH])
    assert not {"tools", "tool_choice", "response_format", "grammar"} & set(request.payload)


def test_forced_call_is_constrained_by_a_json_schema_of_the_offered_calls() -> None:
    request = build_chat_request(
        "m",
        Conversation.of(USER),
        {"tools": [SEARCH, FINISH], "tool_choice": "required", "max_tokens": 9},
        RequestProfile(strategy=TemplateName.CHATML),
    )
    schema = request.payload["response_format"]["json_schema"]["schema"]
    assert [v["properties"]["name"]["const"] for v in schema["anyOf"]] == ["search", "finish"]
    assert schema["anyOf"][0]["properties"]["arguments"]["properties"]["q"]["maxLength"] > 0
    assert request.payload["max_tokens"] == 9


def test_named_call_on_a_classic_server_is_constrained_by_a_grammar() -> None:
    request = build_chat_request(
        "m",
        Conversation.of(USER),
        {"tools": [SEARCH, FINISH], "tool_choice": {"function": {"name": "finish"}}},
        RequestProfile(strategy=TemplateName.MISTRAL, constraint="grammar"),
    )
    assert "response_format" not in request.payload
    assert '"\\"finish\\""' in request.payload["grammar"] and "search" not in request.payload["grammar"]


def test_callers_response_format_passes_through() -> None:
    fmt = {"type": "json_object"}
    request = build_chat_request(
        "m", Conversation.of(USER), {"response_format": fmt}, RequestProfile(strategy=TemplateName.CHATML)
    )
    assert request.payload["response_format"] == fmt


def test_constrained_auto_uses_a_prose_or_call_grammar() -> None:
    request = build_chat_request(
        "m",
        Conversation.of(USER),
        {"tools": [SEARCH]},
        RequestProfile(strategy=TemplateName.CHATML, constrain_auto=True),
    )
    assert request.payload["grammar"].startswith("root ::= ") and "prose" in request.payload["grammar"]


def test_streaming_asks_for_usage() -> None:
    request = build_chat_request(
        "m",
        Conversation.of(USER),
        {"stream_options": {"include_usage": False}},
        RequestProfile(strategy=TemplateName.CHATML),
        stream=True,
    )
    assert request.payload["stream"] is True and request.payload["stream_options"] == {"include_usage": True}


def test_slot_affinity_is_stable_per_conversation_and_spreads_conversations() -> None:
    history = [{"role": "system", "content": "agent A"}, {"role": "user", "content": "task"}]
    slot = affinity_slot(history, 4)  # type: ignore[arg-type]
    longer = [*history, {"role": "assistant", "content": "step"}, {"role": "user", "content": "more"}]
    assert affinity_slot(longer, 4) == slot  # type: ignore[arg-type]
    slots = {affinity_slot([{"role": "system", "content": f"agent {i}"}], 4) for i in range(40)}  # type: ignore[list-item]
    assert slots == {0, 1, 2, 3}


def test_bounded_adds_limits_only_where_missing() -> None:
    schema: Any = bounded(
        {
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string", "enum": ["x"]},
                "c": {"type": "array"},
                "d": {"type": "string", "maxLength": 3},
            },
        }
    )
    props = schema["properties"]
    assert "maxLength" in props["a"] and "maxLength" not in props["b"] and "maxItems" in props["c"]
    assert props["d"]["maxLength"] == 3


def test_parallel_forced_calls_allow_an_array() -> None:
    schema = call_schema([SEARCH, FINISH], ToolChoice("required"), parallel=True)
    assert schema["type"] == "array" and schema["minItems"] == 1


def test_grammars_name_every_offered_tool_and_a_prose_branch() -> None:
    schema = call_schema([SEARCH, FINISH], ToolChoice("required"))
    grammar = grammar_for_schema(schema)
    assert all(f'\\"{name}\\"' in grammar for name in ("search", "finish"))
    assert "prose" in prose_or_call_grammar(schema) and "prose" not in grammar


def test_usage_carries_cached_tokens_from_either_field() -> None:
    new = usage_from(
        {
            "usage": {
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 7},
            }
        }
    )
    old = usage_from({"usage": {"prompt_tokens": 10, "completion_tokens": 2}, "timings": {"cache_n": 7}})
    assert new is not None and old is not None
    assert new.prompt_tokens_details.cached_tokens == old.prompt_tokens_details.cached_tokens == 7
    assert json.loads(json.dumps(new.model_dump()))["total_tokens"] == 12


def _answer(text: str, reason: str = "stop", prompt: int = 10) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "finish_reason": reason, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 5, "total_tokens": prompt + 5},
    }


def test_repair_retry_shows_the_model_its_parse_error_once() -> None:
    from litellm_llamafile.flows.chat import merged_retry, repair_request

    request = build_chat_request(
        "m", Conversation.of(USER), {"tools": [SEARCH]}, RequestProfile(strategy=TemplateName.MISTRAL)
    )
    broken = _answer('{"name": "search", "arguments": {"q": "x"')
    retry = repair_request(request, broken)
    assert retry is not None
    assert [m["role"] for m in retry.messages[-2:]] == ["assistant", "user"]
    assert "invalid" in retry.messages[-1]["content"]
    fixed = merged_retry(retry, broken, _answer('{"name": "search", "arguments": {"q": "x"}}', prompt=30))
    assert fixed["choices"][0]["message"]["content"].endswith("}}")
    assert fixed["usage"]["prompt_tokens"] == 40  # both requests are counted
    still_broken = merged_retry(retry, broken, _answer("sorry"))
    assert still_broken["choices"] == broken["choices"]  # nothing lost: the first reply stays


@pytest.mark.parametrize(
    "text",
    ["Roman dodecahedrons are bronze objects.", '{"name": "search", "arguments": {"q": "x"}}'],
)
def test_prose_and_valid_calls_are_never_retried(text: str) -> None:
    from litellm_llamafile.flows.chat import repair_request

    request = build_chat_request(
        "m", Conversation.of(USER), {"tools": [SEARCH]}, RequestProfile(strategy=TemplateName.CHATML)
    )
    assert repair_request(request, _answer(text)) is None
    assert repair_request(request, _answer('{"name": "search", "argu', reason="length")) is None


def test_forced_call_bounds_fit_the_callers_max_tokens() -> None:
    from litellm_llamafile.prompt.bounds import worst_case_chars

    writer = {
        "type": "function",
        "function": {
            "name": "write",
            "parameters": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "text": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    for budget in (160, 400):
        schema = call_schema([writer], ToolChoice("required"), budget=budget)
        assert worst_case_chars(schema) <= budget  # a forced call always ends before max_tokens
    assert worst_case_chars(call_schema([writer], ToolChoice("required"))) > 400  # no budget: defaults


def test_grammar_lists_small_integer_ranges_exactly() -> None:
    days = {"type": "object", "properties": {"days": {"type": "integer", "minimum": 1, "maximum": 7}}}
    grammar = grammar_for_schema(days)
    assert '"7"' in grammar and '"8"' not in grammar and '"0"' not in grammar
