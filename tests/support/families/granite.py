"""Granite 3.x (`<|tool_call|>` then a JSON list, ibm-granite-granite-3.3-2B-Instruct.jinja; thinking in
`<think>`) and Granite 4.0 / 4.1 (Hermes `<tool_call>` JSON, ibm-granite-granite-4.x.jinja)."""

from __future__ import annotations

import json

from .common import WEATHER, Calls, Case, Format, scenarios
from .qwen import hermes


def granite3(calls: Calls) -> str:
    return "<|tool_call|>" + json.dumps([{"name": n, "arguments": a} for n, a in calls], ensure_ascii=False)


GRANITE3 = Format(
    "granite3",
    granite3,
    markers=("<|tool_call|>", "<think>", "</think>"),
    own_markers=("<|tool_call|>", "]", '"}'),
    think=lambda text: f"<think>{text}</think>",
    one_structure=True,
)
GRANITE4 = Format(
    "granite4", hermes, markers=("<tool_call>", "</tool_call>"), own_markers=("</tool_call>", "<tool_call>")
)


def cases() -> list[Case]:
    c = GRANITE3.case
    return [
        *scenarios(GRANITE3),
        c(
            "single_object_not_list",
            '<|tool_call|>{"name": "get_weather", "arguments": {"city": "Paris"}}',
            WEATHER,
        ),
        c(
            "list_never_closed",
            '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}',
            content='[{"name": "get_weather", "arguments": {"city": "Paris"}}',
        ),
        *scenarios(GRANITE4),
    ]
