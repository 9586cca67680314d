"""tool_choice="auto" with constraints: a response_format stays one of two allowed answers (OpenAI's
semantics: a call or the structured answer), and the "thought" mode allows a short thought, then a call:
prose, or JSON valid for `llamafile_thought_schema` (AutoGPT's one-shot agent), before auto and forced
calls alike."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

from litellm_llamafile import parse_tool_calls
from litellm_llamafile.core.settings import LlamafileSettings, TemplateName, call_settings
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.integration.request_guard import guarded_request
from litellm_llamafile.prompt.bounds import worst_case_chars
from litellm_llamafile.prompt.constraints import thought_constraint
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.reply.streaming import StreamAssembler

from .support.data import SEARCH
from .support.gbnf import samples
from .support.schemas import THOUGHT_SCHEMA, TOOLS, valid_arguments, valid_thought

USER = [{"role": "user", "content": "Find Roman dodecahedrons"}]
ANSWER = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}}


def test_auto_with_a_response_format_allows_a_call_or_the_answer_as_a_schema() -> None:
    params = {"tools": [SEARCH], "response_format": FORMAT}
    payload = build_chat_request(
        "m",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, constraint="json_schema"),
    ).payload
    schema = payload["response_format"]["json_schema"]["schema"]
    call, answer = schema["anyOf"]
    assert call["properties"]["name"] == {"const": "web_search"}
    assert answer["required"] == ["summary"]


def test_auto_with_a_response_format_allows_a_call_or_the_answer_as_a_grammar() -> None:
    params = {"tools": [SEARCH], "response_format": FORMAT}
    payload = build_chat_request(
        "m", Conversation.of(USER), params, RequestProfile(strategy=TemplateName.CHATML, constraint="grammar")
    ).payload
    assert "response_format" not in payload
    assert '\\"summary\\"' in payload["grammar"] and '\\"web_search\\"' in payload["grammar"]


def test_a_response_format_without_tools_is_passed_through() -> None:
    payload = build_chat_request(
        "m", Conversation.of(USER), {"response_format": FORMAT}, RequestProfile(strategy=TemplateName.CHATML)
    ).payload
    assert payload["response_format"] == FORMAT


def test_the_thought_mode_is_a_grammar_of_a_thought_then_a_call() -> None:
    params = {"tools": [SEARCH], "max_tokens": 600}
    payload = build_chat_request(
        "m",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, constrain_auto="thought"),
    ).payload
    assert payload["grammar"].startswith("root ::= thought ")


def test_a_thought_then_a_call_parses_into_content_and_the_call() -> None:
    reply = parse_tool_calls(
        'I will search first. {"name": "web_search", "arguments": {"query": "x"}}', [SEARCH]
    )
    assert reply.content == "I will search first."
    assert [c.name for c in reply.tool_calls] == ["web_search"]


@pytest.mark.parametrize("value", [True, False, "thought"])
def test_the_option_takes_the_thought_mode(value: object) -> None:
    assert LlamafileSettings.resolve(options={"llamafile_constrain_auto": value}).constrain_auto == value


NAMED = {"type": "function", "function": {"name": "place_order"}}


def thought_request(tool_choice: object, **params: Any) -> dict[str, Any]:
    params = {"tools": TOOLS, "tool_choice": tool_choice, **params}
    return build_chat_request(
        "m",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, thought_schema=THOUGHT_SCHEMA),
    ).payload


@pytest.mark.parametrize(
    ("tool_choice", "parallel"), [("auto", False), ("auto", True), ("required", False), (NAMED, False)]
)
def test_a_thought_schema_gives_a_json_thought_then_valid_calls(tool_choice: object, parallel: bool) -> None:
    payload = thought_request(tool_choice, parallel_tool_calls=parallel, max_tokens=2000)
    assert "response_format" not in payload
    for text in samples(payload["grammar"], 40, seed=11):
        reply = parse_tool_calls(text, TOOLS)
        assert valid_thought(reply.content), text  # the thought is the content, whole and schema-valid
        assert reply.tool_calls and (parallel or len(reply.tool_calls) == 1), text
        assert all(valid_arguments(c.name, json.loads(c.arguments)) for c in reply.tool_calls), text
        if tool_choice == NAMED:
            assert {c.name for c in reply.tool_calls} == {"place_order"}


@pytest.mark.parametrize("tool_choice", ["required", NAMED])
def test_the_prose_thought_mode_puts_a_thought_before_forced_calls_too(tool_choice: object) -> None:
    params = {"tools": TOOLS, "tool_choice": tool_choice, "max_tokens": 600}
    payload = build_chat_request(
        "m",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, constrain_auto="thought"),
    ).payload
    assert "response_format" not in payload and payload["grammar"].startswith("root ::= thought ")
    for text in samples(payload["grammar"], 20, seed=5):
        reply = parse_tool_calls(text, TOOLS)
        assert reply.content and len(reply.tool_calls) == 1, text


def test_without_the_thought_mode_a_forced_call_keeps_its_json_schema() -> None:
    payload = build_chat_request(
        "m",
        Conversation.of(USER),
        {"tools": TOOLS, "tool_choice": NAMED},
        RequestProfile(strategy=TemplateName.CHATML),
    ).payload
    assert "grammar" not in payload and payload["response_format"]["json_schema"]["name"] == "tool_call"


def test_an_unbounded_thought_is_fitted_to_its_budget_and_its_own_limits_are_kept() -> None:
    loose = {"type": "object", "properties": {"notes": {"type": "array", "items": {"type": "string"}}}}
    assert worst_case_chars(thought_constraint(loose)) > 300
    assert worst_case_chars(thought_constraint(loose, 300)) <= 300
    fitted: Any = thought_constraint(THOUGHT_SCHEMA, 100)  # its $ref inlined
    members = fitted["properties"]["thoughts"]["properties"]
    assert members["observation"]["maxLength"] == 80  # the schema's own limit is the caller's choice
    assert members["plan"]["items"]["maxLength"] < 80  # what the schema leaves open shrinks


def test_a_json_thought_naming_no_tool_stays_content_even_when_it_quotes_a_tool_name() -> None:
    thought = {"thoughts": {"observation": "none", "plan": ["web_search"], "next_step": "web_search"}}
    text = json.dumps(thought) + '\n{"name": "web_search", "arguments": {"query": "dodecahedron"}}'
    reply = parse_tool_calls(text, [SEARCH])
    assert reply.content == json.dumps(thought)
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("web_search", {"query": "dodecahedron"})
    ]


def test_a_json_thought_then_a_call_streams_into_the_same_split_at_every_cut() -> None:
    thought = json.dumps({"thoughts": {"observation": "{x}", "plan": ["a", "b"], "next_step": "search"}})
    text = thought + '\n{"name": "web_search", "arguments": {"query": "x"}}'
    whole = parse_tool_calls(text, [SEARCH], id_seed="s")
    for cut in range(len(text) + 1):
        assembler = StreamAssembler(frozenset({"web_search"}), parse_tools=True)
        content = assembler.feed(text[:cut]) + assembler.feed(text[cut:])
        end = assembler.finish("stop", id_seed="s")
        assert (content + end.content).strip() == whole.content, cut
        assert [(c.name, c.arguments) for c in end.tool_calls] == [
            (c.name, c.arguments) for c in whole.tool_calls
        ]
        assert end.finish_reason == "tool_calls"


def test_the_thought_schema_comes_from_options_or_the_environment_as_json() -> None:
    from_options = LlamafileSettings.resolve(options={"llamafile_thought_schema": THOUGHT_SCHEMA})
    from_env = LlamafileSettings.resolve(environ={"LLAMAFILE_THOUGHT_SCHEMA": json.dumps(THOUGHT_SCHEMA)})
    assert from_options.thought_schema == from_env.thought_schema == THOUGHT_SCHEMA
    assert from_options.thought_mode and not LlamafileSettings.resolve().thought_mode


@pytest.mark.parametrize(
    "options",
    [
        {"llamafile_thought_schema": "{not json"},
        {"llamafile_thought_schema": ["a", "list"]},
        {"llamafile_thought_schema": THOUGHT_SCHEMA, "llamafile_constrain_auto": True},
    ],
)
def test_a_bad_thought_schema_is_a_bad_request(options: dict[str, Any]) -> None:
    with pytest.raises(litellm.BadRequestError, match="thought_schema"):
        call_settings(api_base=None, api_key=None, timeout=None, options=options)


def test_a_proxy_client_may_set_the_thought_schema_unless_the_deployment_does() -> None:
    request = {"model": "m", "llamafile_thought_schema": THOUGHT_SCHEMA}
    assert guarded_request(request, []) == request
    deployment = {"litellm_params": {"llamafile_thought_schema": {"type": "string"}}}
    assert guarded_request(request, [deployment]) == {"model": "m"}
