"""Forced calls on real reasoning templates: llama-server with SmolLM2 under llama.cpp's own DeepSeek-R1
distill template (its generation prompt opens a think block, so without help the server files the whole
reply as reasoning_content) still returns a schema-valid call, counted exactly (live tier only)."""

from __future__ import annotations

import json

import litellm
import pytest

import litellm_llamafile

from .support.data import WEATHER
from .support.servers import Servers

TOOLS = [WEATHER]
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant. Use the tools when they help."},
    {"role": "user", "content": "What is the weather in Paris right now?"},
]


@pytest.mark.live
@pytest.mark.parametrize("role", ["r1distill"])
def test_a_forced_call_on_a_template_that_opens_a_think_block_is_valid(servers: Servers, role: str) -> None:
    url = servers.url(role)
    try:
        common = {"tools": TOOLS, "tool_choice": "required", "api_base": url}
        response = litellm.completion(
            model="llamafile/x", messages=MESSAGES, max_tokens=32, temperature=0, timeout=1800, **common
        )
        counted = litellm_llamafile.count_tokens(MESSAGES, model="x", **common)
    finally:
        servers.release(role)
    message = response.choices[0].message
    (call,) = message.tool_calls
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert counted == response.usage.prompt_tokens
