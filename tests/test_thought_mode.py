"""The thought mode with `llamafile_thought_schema` through litellm.completion to a real SmolLM2 server:
the reply's content is a JSON thought valid for the schema and its tool_calls one schema-valid call, for
tool_choice auto, required and named, streamed too; AutoGPT's one-shot agent needs exactly that split.
The auto and streamed cases are replayed from cassettes by default; `pytest -m live -k thought_mode`
runs all of them for real."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import litellm
import pytest

from .support.data import FINISH, GREEDY, SEARCH, SYSTEM, TASK
from .support.schemas import THOUGHT_SCHEMA, valid_thought
from .support.servers import SentRequest, Servers

pytestmark = pytest.mark.vcr

TOOLS = [SEARCH, FINISH]
PARAMETERS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
MESSAGES = [
    {"role": "system", "content": f"{SYSTEM} First write your thoughts as JSON, then call one tool."},
    {"role": "user", "content": TASK},
]
FORCED = {"type": "function", "function": {"name": "finish"}}


def thought_completion(api_base: str, tool_choice: object, *, stream: bool = False) -> Any:
    return litellm.completion(
        model="llamafile/smollm2",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice=tool_choice,
        api_base=api_base,
        max_tokens=600,
        stream=stream,
        llamafile_thought_schema=THOUGHT_SCHEMA,
        timeout=3600,  # grammar sampling on a loaded 2-core machine: minutes per reply
        **GREEDY,
    )


def assert_thought_and_one_call(content: str | None, tool_calls: Any, names: set[str]) -> None:
    assert valid_thought(content), content
    assert tool_calls is not None and len(tool_calls) == 1, (content, tool_calls)
    call = tool_calls[0].function
    assert call.name in names
    jsonschema.validate(json.loads(call.arguments), PARAMETERS[call.name])


def test_an_auto_reply_is_a_schema_valid_thought_and_one_valid_call(
    servers: Servers, sent: list[SentRequest]
) -> None:
    response = thought_completion(servers.url("chatml"), "auto")
    body = next(r.body for r in sent if r.path == "/v1/chat/completions")
    assert "grammar" in body and "response_format" not in body  # the thought mode's grammar went out
    message = response.choices[0].message
    assert_thought_and_one_call(message.content, message.tool_calls, {"web_search", "finish"})
    assert response.choices[0].finish_reason == "tool_calls"


# Live only (not recorded): on the loaded machine these replies took longer than a recording session.
@pytest.mark.live
@pytest.mark.parametrize(
    ("tool_choice", "names"),
    [("required", {"web_search", "finish"}), (FORCED, {"finish"})],
    ids=["required", "named"],
)
def test_a_forced_reply_is_a_schema_valid_thought_and_the_forced_call(
    servers: Servers, tool_choice: object, names: set[str]
) -> None:
    message = thought_completion(servers.url("chatml"), tool_choice).choices[0].message
    assert_thought_and_one_call(message.content, message.tool_calls, names)


def test_a_streamed_reply_splits_into_the_same_thought_and_call(servers: Servers) -> None:
    chunks = list(thought_completion(servers.url("chatml"), "auto", stream=True))
    message = litellm.stream_chunk_builder(chunks).choices[0].message
    assert_thought_and_one_call(message.content, message.tool_calls, {"web_search", "finish"})
