"""An unconstrained reply (tool_choice "auto") can hold a call its tool's schema rejects: a required
argument missing, a value of the wrong type, an enum it does not list. Such a call is never handed on as
a call: it comes back as text (the model's call, written as JSON, after any prose), streamed and not, so
an agent that executes `tool_calls` never runs a tool with arguments the tool refuses. Valid calls of the
same reply stay calls. (Figures behind the choice: docs/models.md, bench/auto_calls.py.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest

from litellm_llamafile.prompt.call_checks import call_problem

from .support.calls import STOP_AFTER_ANNOUNCED_CALL, call
from .support.fake_server import FaultyServer, answer_chat, chunk

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])

WEATHER: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                "required": ["city"],
            },
        },
    }
]
ASK = [{"role": "user", "content": "Weather in Paris and Rome?"}]


def _message(result: Any) -> Any:
    if isinstance(result, list):
        return litellm.stream_chunk_builder(result).choices[0]
    return result.choices[0]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"unit": "celsius"}, "'city' is a required property"),
        ({"city": 7}, "city: 7 is not of type 'string'"),
        ({"city": "Paris", "unit": "kelvin"}, "unit: 'kelvin' is not one of ['celsius', 'fahrenheit']"),
    ],
)
def test_what_the_schema_rejects_is_named(arguments: dict[str, Any], problem: str) -> None:
    assert call_problem("get_weather", json.dumps(arguments), WEATHER) == problem
    assert call_problem("get_weather", '{"city": "Paris"}', WEATHER) is None
    assert call_problem("get_time", "{}", WEATHER) == "no tool named 'get_time' was offered"


@local_only
@pytest.mark.parametrize("mode", ["sync", "stream", "async", "astream"])
def test_a_call_the_schema_rejects_comes_back_as_text(faulty: Callable[..., FaultyServer], mode: str) -> None:
    written = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"unit": "celsius"}},  # no city
    ]
    server = faulty(answer_chat("Let me check.\n" + json.dumps(written)))
    result = call(mode, api_base=server.url, messages=ASK, tools=WEATHER, tool_choice="auto")
    choice = _message(result)
    calls = choice.message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}]
    assert choice.finish_reason == "tool_calls"
    content = choice.message.content or ""
    assert content.startswith("Let me check.")
    assert json.loads(content.splitlines()[-1]) == written[1]


@local_only
@pytest.mark.parametrize("mode", ["sync", "stream"])
def test_a_reply_whose_only_call_is_rejected_is_a_plain_answer(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(answer_chat('{"name": "get_weather", "arguments": {"city": ["Paris"]}}'))
    result = call(mode, api_base=server.url, messages=ASK, tools=WEATHER, tool_choice="auto")
    choice = _message(result)
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert json.loads(choice.message.content) == {"name": "get_weather", "arguments": {"city": ["Paris"]}}


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_streamed_call_announced_before_the_schema_rejects_it_never_completes(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    """A family's call is announced as soon as its name is read, before its arguments are whole; when
    the tool's schema then rejects it, its arguments never become JSON (the last fragment is withheld),
    its text comes as content, as in the non-streamed reply, and the stream ends as the server said
    ("stop"; LiteLLM 1.110 renames that "tool_calls" after any announced call)."""
    pieces = ['<tool_call>\n{"name": "get_weather", "arguments": {"unit": ', '"celsius"}}\n</tool_call>']

    def chat(exchange: Any) -> None:
        exchange.sse([*(chunk(p) for p in pieces), chunk(finish_reason="stop")])

    server = faulty(chat)
    chunks = call(mode, api_base=server.url, messages=ASK, tools=WEATHER, tool_choice="auto")
    announced = [c for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert announced, "the call was announced while its arguments streamed"
    choice = _message(chunks)
    for streamed in choice.message.tool_calls or []:
        with pytest.raises(ValueError):
            json.loads(streamed.function.arguments)
    assert choice.finish_reason == STOP_AFTER_ANNOUNCED_CALL
    assert json.loads(choice.message.content.splitlines()[-1]) == {
        "name": "get_weather",
        "arguments": {"unit": "celsius"},
    }
