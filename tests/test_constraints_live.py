"""The constraints against a real llama-server with SmolLM2: the server accepts each grammar and
schema, and what the model writes under them is what they promise (validated by jsonschema and by
pydantic). Requests are posted straight to /v1/chat/completions, with the adapter's own prompt.

    pytest -m live -k constraints_live
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import pytest

from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.prompt.constraints import answer_constraint, call_or_answer_schema, call_schema
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.prompt.grammar import (
    call_or_answer_grammar,
    grammar_for_schema,
    thought_then_call_grammar,
)
from litellm_llamafile.prompt.schemas import answer_schema
from litellm_llamafile.prompt.tools import ToolChoice
from litellm_llamafile.reply.parsing import parse_tool_calls

from .support.schemas import MODELS, TOOLS, Location, tool_for, valid_arguments
from .support.servers import Servers

pytestmark = pytest.mark.live

MAX_TOKENS = 300
THOUGHT_CHARS = 120
PROMPTS = {
    "get_weather": "What's the weather in Rome for the next 3 days?",
    "place_order": "Order two boxes of tea (sku TEA-2, 4.5 each) for Ana in Lisbon, urgently.",
    "make_tree": "Make a family tree: Augustus, with children Julia and Tiberius.",
    "configure": "Limit retries to 3, pair 1 with 'a', start on 2026-03-01.",
}


def post(servers: Servers, body: dict[str, Any]) -> tuple[str, str]:
    """The reply text and finish reason; a grammar the server rejects fails here (HTTP 400)."""
    response = httpx.post(f"{servers.url('chatml')}/v1/chat/completions", json=body, timeout=1200)
    assert response.status_code == 200, response.text[:300]
    choice = response.json()["choices"][0]
    return choice["message"]["content"] or "", choice["finish_reason"]


def base_body(tools: list[dict[str, Any]], prompt: str, choice: object) -> dict[str, Any]:
    """The adapter's request (tool instructions in the prompt), minus its own constraint."""
    params = {"tools": tools, "tool_choice": choice, "max_tokens": MAX_TOKENS, "temperature": 0, "seed": 7}
    messages = [{"role": "user", "content": prompt}]
    body = build_chat_request(
        "smollm2", Conversation.of(messages), params, RequestProfile(strategy=TemplateName.CHATML)
    ).payload
    for key in ("grammar", "response_format", "json_schema"):
        body.pop(key, None)
    return body


# llama-server's own JSON-schema converter ignores maxProperties, so a dict[str, X] argument (Settings)
# is bounded only on the GBNF path, which is what the adapter sends llama-server; over response_format
# (llamafiler's path) SmolLM2 wrote keys until max_tokens (seen Dec 2026).
FORCED = [
    *((name, "grammar") for name in MODELS),
    *((name, "response_format") for name in MODELS if name != "configure"),
]


@pytest.mark.parametrize(("name", "field"), FORCED)
def test_forced_call_for_a_pydantic_schema_with_refs_is_schema_valid(
    servers: Servers, name: str, field: str
) -> None:
    tool = tool_for(name, MODELS[name])
    choice = {"type": "function", "function": {"name": name}}
    schema = call_schema([tool], ToolChoice("named", name), budget=MAX_TOKENS)
    body = base_body([tool], PROMPTS[name], choice)
    if field == "grammar":
        body["grammar"] = grammar_for_schema(schema)
    else:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "call", "schema": schema}}
    text, reason = post(servers, body)
    assert reason == "stop", text[-200:]  # the worst case fits max_tokens: the call always ends
    call = json.loads(text)
    assert call["name"] == name and valid_arguments(name, call["arguments"]), text


THOUGHT_PROMPTS = ["Tell me about the weather in Oslo.", "Build a tree with a root named Rome."]


@pytest.mark.parametrize("prompt", THOUGHT_PROMPTS)
def test_thought_then_call_reply_parses_into_content_and_a_valid_call(servers: Servers, prompt: str) -> None:
    call = call_schema(TOOLS, ToolChoice("auto"), budget=MAX_TOKENS - THOUGHT_CHARS)
    body = base_body(TOOLS, prompt, "auto")
    body["grammar"] = thought_then_call_grammar(call, max_thought_chars=THOUGHT_CHARS)
    text, reason = post(servers, body)
    assert reason == "stop", text[-200:]
    reply = parse_tool_calls(text, TOOLS)
    assert reply.content and len(reply.content) <= THOUGHT_CHARS, text
    assert len(reply.tool_calls) == 1, text
    assert valid_arguments(reply.tool_calls[0].name, json.loads(reply.tool_calls[0].arguments)), text


FORECAST = {"type": "json_schema", "json_schema": {"name": "place", "schema": Location.model_json_schema()}}


@pytest.mark.parametrize("field", ["grammar", "response_format"])
@pytest.mark.parametrize(
    "prompt", ["Answer with the place only: where is the Colosseum?", "Get the weather in Paris for 2 days."]
)
def test_call_or_answer_reply_is_a_valid_call_or_a_valid_answer(
    servers: Servers, prompt: str, field: str
) -> None:
    answer = answer_schema(FORECAST) or {}
    fitted_answer = answer_constraint(answer, budget=MAX_TOKENS)
    call = call_schema(TOOLS, ToolChoice("auto"), budget=MAX_TOKENS)
    body = base_body(TOOLS, prompt, "auto")
    if field == "grammar":
        body["grammar"] = call_or_answer_grammar(call, fitted_answer)
    else:
        schema = call_or_answer_schema(call, fitted_answer)
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    text, reason = post(servers, body)
    assert reason == "stop", text[-200:]
    reply = parse_tool_calls(text, TOOLS)
    if reply.tool_calls:
        (parsed,) = reply.tool_calls
        assert reply.content is None and valid_arguments(parsed.name, json.loads(parsed.arguments)), text
    else:
        jsonschema.validate(json.loads(text), answer)
