"""Kimi K2 / K2 Thinking (`<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0
<|tool_call_argument_begin|>{...}<|tool_call_end|><|tool_calls_section_end|>`, think blocks the model
writes, Kimi-K2-Thinking.jinja; calls that end a think block and noise between markers, as llama.cpp's
and vLLM's K2 parsers read them) and Kimi K3 (XTML sections: `<|open|>tag attrs<|sep|>` ...
`<|close|>tag<|sep|>`, Kimi-K3.jinja, llama.cpp's kimi-k3 parser)."""

from __future__ import annotations

import html
import json
from typing import Any

from .common import WEATHER, Calls, Case, Format, scenarios


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def k2(calls: Calls) -> str:
    body = "".join(
        f"<|tool_call_begin|>functions.{n}:{i}<|tool_call_argument_begin|>{_json(a)}<|tool_call_end|>"
        for i, (n, a) in enumerate(calls)
    )
    return f"<|tool_calls_section_begin|>{body}<|tool_calls_section_end|>"


def _attr(value: str) -> str:
    return html.escape(value, quote=True).replace("&#x27;", "'")


def _xtml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "object" if isinstance(value, dict) else "array"


def _k3_call(index: int, name: str, args: dict[str, Any]) -> str:
    body = "".join(
        f'<|open|>argument key="{_attr(k)}" type="{_xtml_type(v)}"<|sep|>'
        + (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
        + "<|close|>argument<|sep|>"
        for k, v in args.items()
    )
    return f'<|open|>call tool="{_attr(name)}" index="{index}"<|sep|>{body}<|close|>call<|sep|>'


def k3(calls: Calls) -> str:
    """The reply after a thinking-off prompt (`<|open|>response<|sep|>` opened): the response closed, the
    tools section, the message closed."""
    tools = "".join(_k3_call(i + 1, n, a) for i, (n, a) in enumerate(calls))
    return f"<|close|>response<|sep|><|open|>tools<|sep|>{tools}<|close|>tools<|sep|><|close|>message<|sep|>"


K2 = Format(
    "kimi_k2",
    k2,
    markers=(
        "<|tool_calls_section_begin|>",
        "<|tool_call_begin|>",
        "<|tool_call_argument_begin|>",
        "<|tool_call_end|>",
        "<|tool_calls_section_end|>",
        "<think>",
        "</think>",
    ),
    own_markers=("<|tool_call_end|>", "<|tool_calls_section_end|>", "<|tool_call_begin|>"),
    think=lambda text: f"<think>{text}</think>",
    calls_in_reasoning=True,
)
K3_MARKERS = ("<|open|>", "<|close|>", "<|sep|>", "<|end_of_msg|>")
K3 = Format(
    "kimi_k3",
    k3,
    markers=K3_MARKERS,
    own_markers=("<|close|>argument<|sep|>", "<|close|>call<|sep|>", '<|open|>argument key="x"<|sep|>'),
    think=lambda text: f"<|open|>think<|sep|>{text}<|close|>think<|sep|><|open|>response<|sep|>",
    thinking_prompt="<|open|>think<|sep|>",
    disabled_prompt="<|open|>response<|sep|>",
    disabled_echo="<|open|>response<|sep|>",
)


def cases() -> list[Case]:
    c2, c3 = K2.case, K3.case
    args = '{"city": "Paris"}'
    return [
        *scenarios(K2),
        c2(
            "noise_between_markers",
            f"<|tool_calls_section_begin|> \n<|tool_call_begin|> functions.get_weather:0 "
            f"<|tool_call_argument_begin|> {args} <|tool_call_end|>\n"
            f"<|tool_calls_section_end|>",
            WEATHER,
        ),
        c2(
            "id_without_prefix",
            f"<|tool_calls_section_begin|><|tool_call_begin|>get_weather:0<|tool_call_argument_begin|>{args}<|tool_call_end|><|tool_calls_section_end|>",
            WEATHER,
        ),
        c2(
            "call_without_section",
            f"<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{args}<|tool_call_end|>",
            WEATHER,
        ),
        c2(
            "call_ends_think_block",
            f"<think>Need weather.<|tool_calls_section_begin|>"
            f"<|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{args}"
            f"<|tool_call_end|><|tool_calls_section_end|>",
            WEATHER,
            reasoning="Need weather.",
        ),
        c2(
            "singular_section_marker",
            f"<|tool_call_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{args}<|tool_call_end|><|tool_call_section_end|>",
            WEATHER,
        ),
        *scenarios(K3),
        c3(
            "issue_repro_sections_leak",
            "Hello! How can I help?<|close|>response<|sep|><|close|>message<|sep|>",
            content="Hello! How can I help?",
        ),
        c3(
            "thinking_then_response_then_tools",
            "Paris it is.<|close|>think<|sep|><|open|>response<|sep|>Checking."
            "<|close|>response<|sep|><|open|>tools<|sep|>"
            + _k3_call(1, "get_weather", {"city": "Paris"})
            + "<|close|>tools<|sep|><|close|>message<|sep|><|end_of_msg|>",
            WEATHER,
            content="Checking.",
            reasoning="Paris it is.",
            starts_in_reasoning=True,
        ),
        c3(
            "json_block_arguments",
            f"<|close|>response<|sep|><|open|>tools<|sep|>"
            f'<|open|>call tool="get_weather" index="1"<|sep|><|open|>json type="object"'
            f"<|sep|>{args}<|close|>json<|sep|><|close|>call<|sep|><|close|>tools<|sep|>",
            WEATHER,
        ),
        c3(
            "escaped_attribute",
            '<|open|>tools<|sep|><|open|>call tool="get_weather"<|sep|>'
            '<|open|>argument key="city" type="string"<|sep|>"Q" &amp; A<|close|>argument'
            "<|sep|><|close|>call<|sep|><|close|>tools<|sep|>",
            (("get_weather", {"city": '"Q" &amp; A'}),),
        ),
        c3(
            "type_attribute_when_undeclared",
            '<|open|>tools<|sep|><|open|>call tool="get_weather"<|sep|>'
            '<|open|>argument key="extra" type="number"<|sep|>7<|close|>argument<|sep|>'
            "<|close|>call<|sep|><|close|>tools<|sep|>",
            (("get_weather", {"extra": 7}),),
        ),
        c3(
            "reasoning_skips_its_closer",
            "Short.<|open|>response<|sep|>Hi there.",
            content="Hi there.",
            reasoning="Short.",
            starts_in_reasoning=True,
        ),
    ]
