"""One tool-using agent conversation on real servers under llama.cpp's own templates (SmolLM2 under each):
a forced call, the tool's result with tool_choice auto, then a follow-up. Each family must answer without
a server error, give a schema-valid forced call, count every prompt exactly (count_tokens equals the
server's prompt_tokens) and keep the prompt cache from turn to turn. The whole corpus runs in
bench/template_corpus.py; these are the families whose handling differs."""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

import litellm_llamafile

from .support.data import WEATHER
from .support.servers import Servers

TOOLS = [WEATHER]
RESULT = '{"city": "Paris", "temperature_c": 18, "sky": "sunny"}'
PREFIX_SLACK = 16  # tokens a turn may re-prefill at the seam (generation prompt against rendered reply)
FAMILIES = [
    "qwen3",  # thinking switch honoured: an empty think block closes the prompt
    "smollm3",  # the switch is rendered into the system block
    "gemma4",
    "r1distill",  # the generation prompt opens a think block
    "minimax_m2",  # ... even with thinking off
    "cohere2",
    "kimi_k3",  # the server's own reply reader refuses unconstrained text: sent past it
    "gpt_oss",  # the server alone fails a plain chat
    "glm46",
    "llama31",
    "hermes3",
    "nemo",  # strict alternation, no system role
]


def _turn(url: str, messages: list[dict[str, Any]], choice: str) -> tuple[Any, int]:
    common: dict[str, Any] = {"tools": TOOLS, "tool_choice": choice, "api_base": url}
    response = litellm.completion(
        model="llamafile/x", messages=messages, max_tokens=24, temperature=0, timeout=1800, **common
    )
    return response, litellm_llamafile.count_tokens(messages, model="x", **common)


@pytest.mark.vcr
@pytest.mark.parametrize("role", FAMILIES)
def test_an_agent_conversation_holds_on_every_family(servers: Servers, role: str) -> None:
    url = servers.url(role)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a terse assistant. Use the tools when they help."},
        {"role": "user", "content": "What is the weather in Paris right now?"},
    ]
    try:
        forced, counted = _turn(url, messages, "required")
        (call,) = forced.choices[0].message.tool_calls
        assert call.function.name == "get_weather"
        assert isinstance(json.loads(call.function.arguments)["city"], str)
        assert counted == forced.usage.prompt_tokens
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": RESULT},
        ]
        previous, answer = forced.usage.prompt_tokens, forced
        for follow_up in ("", "Thanks. Should I take an umbrella?"):
            if follow_up:
                reply = answer.choices[0].message
                messages += [{"role": "assistant", "content": reply.content or ""}]
                messages += [{"role": "user", "content": follow_up}]
            answer, counted = _turn(url, messages, "auto")
            assert counted == answer.usage.prompt_tokens
            assert answer.usage.prompt_tokens_details.cached_tokens >= previous - PREFIX_SLACK
            previous = answer.usage.prompt_tokens
    finally:
        servers.release(role)
