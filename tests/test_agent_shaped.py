"""Requests shaped like an autonomous agent's (twenty commands with long descriptions, a long system
prompt, an earlier call and its result in the history) through litellm.completion to a real SmolLM2
server: the prompt fits and is counted exactly, forced calls (required, named) are schema-valid among
twenty commands, an auto reply comes back as parsed calls or as content, and a thought followed by a
call keeps both. Replayed from cassettes by default; `pytest -m live -k agent_shaped` runs it for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import litellm
import pytest

import litellm_llamafile

from .support.agent_requests import (
    AGENT_COMMANDS,
    AGENT_HISTORY,
    AGENT_SYSTEM,
    AGENT_TASK,
    tool_schema,
)
from .support.agent_servers import AGENT_CONTEXT, AgentServers
from .support.data import GREEDY

pytestmark = pytest.mark.vcr

COMMAND_NAMES = {tool["function"]["name"] for tool in AGENT_COMMANDS}


@pytest.fixture(scope="module")
def agent_servers(live: bool) -> Iterator[AgentServers]:
    pool = AgentServers(live)
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def vcr_config(vcr_config: dict[str, Any], agent_servers: AgentServers) -> dict[str, Any]:
    """The shared config, plus this module's one-slot servers rewritten to their canonical URLs."""
    shared = vcr_config["before_record_request"]
    return {**vcr_config, "before_record_request": lambda request: agent_servers.canonical(shared(request))}


def agent_request(api_base: str, messages: list[dict[str, Any]], tool_choice: Any, max_tokens: int) -> Any:
    return litellm.completion(
        model="llamafile/smollm2",
        messages=messages,
        tools=AGENT_COMMANDS,
        tool_choice=tool_choice,
        api_base=api_base,
        max_tokens=max_tokens,
        **GREEDY,
    )


def assert_schema_valid(tool_calls: Any) -> None:
    assert tool_calls
    for call in tool_calls:
        assert call.type == "function" and call.id.startswith("call_")
        assert call.function.name in COMMAND_NAMES
        jsonschema.validate(json.loads(call.function.arguments), tool_schema(call.function.name))


def test_an_agents_prompt_fits_is_counted_exactly_and_an_auto_reply_is_parsed(
    agent_servers: AgentServers,
) -> None:
    api_base = agent_servers.url("chatml")
    counted = litellm_llamafile.count_tokens(
        AGENT_HISTORY, tools=AGENT_COMMANDS, tool_choice="auto", api_base=api_base
    )
    response = agent_request(api_base, AGENT_HISTORY, "auto", max_tokens=64)
    assert counted == response.usage.prompt_tokens  # exact: what LiteLLM's trimming can rely on
    assert counted + 64 <= AGENT_CONTEXT  # twenty long commands and a history fit one 8k slot
    choice = response.choices[0]
    if choice.message.tool_calls:  # SmolLM2 may answer with a call or in prose: either is usable
        assert choice.finish_reason == "tool_calls"
        assert {c.function.name for c in choice.message.tool_calls} <= COMMAND_NAMES
        for call in choice.message.tool_calls:
            assert isinstance(json.loads(call.function.arguments), dict)
    else:
        assert isinstance(choice.message.content, str) and choice.message.content


@pytest.mark.parametrize("template", ["chatml", "mistral"])
def test_a_required_call_among_twenty_commands_is_schema_valid(
    agent_servers: AgentServers, template: str
) -> None:
    api_base = agent_servers.url(template)
    response = agent_request(api_base, AGENT_HISTORY, "required", max_tokens=120)
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert_schema_valid(choice.message.tool_calls)
    # The strict template accepted the history's call and tool result (reshaped), and the count of the
    # forced request (its constraint does not add prompt tokens) is still exact.
    counted = litellm_llamafile.count_tokens(
        AGENT_HISTORY, tools=AGENT_COMMANDS, tool_choice="required", api_base=api_base
    )
    assert counted == response.usage.prompt_tokens


def test_a_named_command_with_nested_arguments_is_schema_valid(agent_servers: AgentServers) -> None:
    messages = [
        {"role": "system", "content": AGENT_SYSTEM},
        {"role": "user", "content": f"{AGENT_TASK} When the report is done, tell the channel #finds."},
    ]
    response = agent_request(
        agent_servers.url("chatml"),
        messages,
        {"type": "function", "function": {"name": "send_message"}},
        max_tokens=120,
    )
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "send_message"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, tool_schema("send_message"))
    assert arguments["recipient"]["kind"] in ("person", "channel")  # nested object, enum inside


def test_a_thought_then_a_call_keeps_both() -> None:
    """What an agent that wants its reasoning and its command in one reply gets from an auto reply."""
    reply = litellm_llamafile.parse_tool_calls(
        "No sources yet, so I will search first.\n"
        '```json\n{"name": "web_search", "arguments": {"query": "Roman dodecahedron finds"}}\n```',
        AGENT_COMMANDS,
    )
    assert reply.content == "No sources yet, so I will search first."
    (call,) = reply.tool_calls
    assert call.name == "web_search"
    assert json.loads(call.arguments) == {"query": "Roman dodecahedron finds"}
