"""Gemma 3 (```tool_code fences holding Python calls, one per line, as Google's function-calling guide has
them) and Gemma 4 (`<|tool_call>call:f{k:<|"|>v<|"|>}<tool_call|>`, keys sorted, thinking in
`<|channel>thought ... <channel|>`, as google-gemma-4-31B-it.jinja writes them and llama.cpp's Gemma 4
parser reads them)."""

from __future__ import annotations

from typing import Any

from .common import WEATHER, Calls, Case, Format, scenarios
from .llama import _literal

QUOTE = '<|"|>'


def gemma3(calls: Calls) -> str:
    lines = [f"{n}(" + ", ".join(f"{k}={_literal(v)}" for k, v in a.items()) + ")" for n, a in calls]
    return "```tool_code\n" + "\n".join(lines) + "\n```"


def _gemma4_value(value: Any) -> str:
    """The template's format_argument: strings quoted, booleans lower, mappings with sorted bare keys."""
    if isinstance(value, str):
        return QUOTE + value + QUOTE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_gemma4_value(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_gemma4_value(v) for v in value) + "]"
    return str(value)


def gemma4(calls: Calls) -> str:
    return "".join(
        f"<|tool_call>call:{n}{{"
        + ",".join(f"{k}:{_gemma4_value(v)}" for k, v in sorted(a.items()))
        + "}<tool_call|>"
        for n, a in calls
    )


def _think(text: str) -> str:
    return f"<|channel>thought\n{text}\n<channel|>"


GEMMA3 = Format("gemma3", gemma3, markers=(), own_markers=("```", "')", "tool_code"), one_structure=True)
GEMMA4 = Format(
    "gemma4",
    gemma4,
    markers=("<|tool_call>", "<tool_call|>", QUOTE, "<|channel>", "<channel|>"),
    own_markers=("<tool_call|>", "}", "call:x{", "<|tool_call>"),
    think=_think,
    disabled_prompt="<|channel>thought\n<channel|>",
    disabled_echo="<|channel>thought\n<channel|>",
)


def cases() -> list[Case]:
    g3, g4 = GEMMA3.case, GEMMA4.case
    return [
        *scenarios(GEMMA3),
        g3(
            "unclosed_fence_is_prose",
            "```tool_code\nget_weather(city='Paris')",
            content="```tool_code\nget_weather(city='Paris')",
        ),
        g3("other_fence_is_prose", "```python\nprint('hi')\n```", content="```python\nprint('hi')\n```"),
        *scenarios(GEMMA4),
        g4(
            "quoted_keys",
            f"<|tool_call>call:get_weather{{{QUOTE}city{QUOTE}:{QUOTE}Paris{QUOTE}}}<tool_call|>",
            WEATHER,
        ),
        g4(
            "spaces_between",
            '<|tool_call>call:get_weather{ city: <|"|>Paris<|"|> , days: 3 }<tool_call|>',
            (("get_weather", {"city": "Paris", "days": 3}),),
        ),
        g4("empty_channel_then_call", "<|channel><channel|>" + gemma4(WEATHER), WEATHER),
        g4(
            "python_none",
            "<|tool_call>call:set_record{note:None}<tool_call|>",
            (("set_record", {"note": None}),),
        ),
    ]
