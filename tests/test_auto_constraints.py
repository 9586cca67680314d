"""tool_choice="auto" with constraints: a response_format stays one of two allowed answers (OpenAI's
semantics: a call or the structured answer), and the "thought" mode allows a short thought, then a call."""

from __future__ import annotations

import pytest

from litellm_llamafile import parse_tool_calls
from litellm_llamafile.settings import LlamafileSettings, TemplateName
from litellm_llamafile.transformation import build_chat_request

from .support.data import SEARCH

USER = [{"role": "user", "content": "Find Roman dodecahedrons"}]
ANSWER = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": ANSWER}}


def test_auto_with_a_response_format_allows_a_call_or_the_answer_as_a_schema() -> None:
    params = {"tools": [SEARCH], "response_format": FORMAT}
    payload = build_chat_request("m", USER, params, TemplateName.CHATML, constraint="json_schema").payload
    schema = payload["response_format"]["json_schema"]["schema"]
    call, answer = schema["anyOf"]
    assert call["properties"]["name"] == {"const": "web_search"}
    assert answer["required"] == ["summary"]


def test_auto_with_a_response_format_allows_a_call_or_the_answer_as_a_grammar() -> None:
    params = {"tools": [SEARCH], "response_format": FORMAT}
    payload = build_chat_request("m", USER, params, TemplateName.CHATML, constraint="grammar").payload
    assert "response_format" not in payload
    assert '\\"summary\\"' in payload["grammar"] and '\\"web_search\\"' in payload["grammar"]


def test_a_response_format_without_tools_is_passed_through() -> None:
    payload = build_chat_request("m", USER, {"response_format": FORMAT}, TemplateName.CHATML).payload
    assert payload["response_format"] == FORMAT


def test_the_thought_mode_is_a_grammar_of_a_thought_then_a_call() -> None:
    params = {"tools": [SEARCH], "max_tokens": 600}
    payload = build_chat_request("m", USER, params, TemplateName.CHATML, constrain_auto="thought").payload
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
