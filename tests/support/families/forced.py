"""The adapter's own forced call: with `tool_choice` required or named, the constraint makes the reply one
JSON call `{"name": f, "arguments": {...}}` or a list of them (tools.call_schema), maybe after a thought (the
thought mode), and the reply is read as a call from its first character, so its arguments stream."""

from __future__ import annotations

import json
from dataclasses import replace

from .common import WEATHER, Calls, Case, Format, scenarios


def constrained(calls: Calls) -> str:
    objects = [{"name": n, "arguments": a} for n, a in calls]
    return json.dumps(objects[0] if len(objects) == 1 else objects, ensure_ascii=False)


FORCED = Format(
    "forced_json",
    constrained,
    markers=(),
    own_markers=("</tool_call>", '"}}', "[TOOL_CALLS]"),
    one_structure=True,
)


def cases() -> list[Case]:
    c = FORCED.case
    call = constrained(WEATHER)
    return [
        replace(case, forced=True)
        for case in (
            *scenarios(FORCED),
            c(
                "json_thought_then_call",
                '{"thoughts": {"plan": "check the weather"}}\n' + call,
                WEATHER,
                content='{"thoughts": {"plan": "check the weather"}}',
            ),
            c(
                "thought_naming_a_tool_is_not_a_call",
                '{"thoughts": {"name": "get_weather"}}\n' + call,
                WEATHER,
                content='{"thoughts": {"name": "get_weather"}}',
            ),
            c("compact_json", '{"name":"get_weather","arguments":{"city":"Paris"}}', WEATHER),
            c("arguments_before_name", '{"arguments": {"city": "Paris"}, "name": "get_weather"}', WEATHER),
        )
    ]
