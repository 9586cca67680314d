"""The tool-using agent conversation the family and model tests run on real servers: a forced call, the
tool's result with tool_choice auto, then a follow-up. Each turn must answer without a server error, the
forced call must be schema-valid, every prompt must be counted exactly (count_tokens equals the server's
prompt_tokens) and each turn must reuse the previous prompt from the server's cache."""

from __future__ import annotations

import json
from typing import Any

import litellm

import litellm_llamafile

from .data import WEATHER

TOOLS = [WEATHER]
RESULT = '{"city": "Paris", "temperature_c": 18, "sky": "sunny"}'
PREFIX_SLACK = 16  # tokens a turn may re-prefill at the seam (generation prompt against rendered reply)
OPENING = [
    {"role": "system", "content": "You are a terse assistant. Use the tools when they help."},
    {"role": "user", "content": "What is the weather in Paris right now?"},
]


def turn(url: str, messages: list[dict[str, Any]], choice: str, **options: Any) -> tuple[Any, int]:
    """One request and the adapter's count of its prompt."""
    common: dict[str, Any] = {"tools": TOOLS, "tool_choice": choice, "api_base": url}
    response = litellm.completion(
        model="llamafile/x",
        messages=messages,
        max_tokens=24,
        temperature=0,
        timeout=1800,
        **common,
        **options,
    )
    counted = litellm_llamafile.count_tokens(messages, model="x", **common, options=options or None)
    return response, counted


def converse(url: str, **options: Any) -> list[dict[str, Any]]:
    """Run the conversation with its checks (`options`: llamafile_* settings); the history it built."""
    messages: list[dict[str, Any]] = [dict(m) for m in OPENING]
    forced, counted = turn(url, messages, "required", **options)
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
        answer, counted = turn(url, messages, "auto", **options)
        assert counted == answer.usage.prompt_tokens
        assert answer.usage.prompt_tokens_details.cached_tokens >= previous - PREFIX_SLACK
        previous = answer.usage.prompt_tokens
    return messages
