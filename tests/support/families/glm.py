"""GLM 4.5 / 4.6 (`<tool_call>f\\n<arg_key>k</arg_key>\\n<arg_value>v</arg_value>\\n</tool_call>`,
GLM-4.6.jinja) and GLM 4.7 / 5 (no newlines between the tags, thinking opened by the prompt and `</think>`
when off, GLM-4.7-Flash.jinja); non-string values are JSON (`tojson`). GLM 4.7's missing last
`</arg_value>`, and values that quote the format's own tags, as vLLM's glm47 parser and llama.cpp's tests
read them."""

from __future__ import annotations

import json
from typing import Any

from .common import WEATHER, Calls, Case, Format, scenarios


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def glm46(calls: Calls) -> str:
    return "".join(
        f"\n<tool_call>{n}\n"
        + "".join(f"<arg_key>{k}</arg_key>\n<arg_value>{_value(v)}</arg_value>\n" for k, v in a.items())
        + "</tool_call>"
        for n, a in calls
    ).lstrip("\n")


def glm47(calls: Calls) -> str:
    return "".join(
        f"<tool_call>{n}"
        + "".join(f"<arg_key>{k}</arg_key><arg_value>{_value(v)}</arg_value>" for k, v in a.items())
        + "</tool_call>"
        for n, a in calls
    )


MARKERS = (
    "<tool_call>",
    "</tool_call>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
    "<think>",
    "</think>",
)
GLM46 = Format(
    "glm4_6",
    glm46,
    markers=MARKERS,
    own_markers=("</arg_value>", "<arg_key>x</arg_key>", "</tool_call> said", "<tool_call>"),
    think=lambda text: f"<think>{text}</think>",
    disabled_prompt="\n<think></think>",
    disabled_echo="<think></think>",
    calls_in_reasoning=True,
    ambiguous_ends=("</tool_call>",),
)
GLM47 = Format(
    "glm4_7",
    glm47,
    markers=MARKERS,
    own_markers=("</arg_value>", "<arg_key>x</arg_key>", "</tool_call> said", "<tool_call>"),
    think=lambda text: f"<think>{text}</think>",
    thinking_prompt="<think>",
    disabled_prompt="</think>",
    disabled_echo="</think>",
    calls_in_reasoning=True,
    ambiguous_ends=("</tool_call>",),
    separator="",
)


def cases() -> list[Case]:
    c = GLM47.case
    return [
        *scenarios(GLM46),
        *scenarios(GLM47),
        c(
            "missing_last_arg_value",
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Paris</tool_call>",
            WEATHER,
        ),
        c(
            "missing_arg_value_then_another_call",
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Oslo</tool_call><tool_call>ping</tool_call>",
            (("get_weather", {"city": "Oslo"}), ("ping", {})),
        ),
        c("no_arguments_no_tags", "<tool_call>ping</tool_call>", (("ping", {}),)),
        c(
            "python_spelled_boolean",
            "<tool_call>set_record<arg_key>repeat</arg_key><arg_value>True</arg_value></tool_call>",
            (("set_record", {"repeat": True}),),
        ),
        c(
            "undeclared_value_decoded",
            "<tool_call>get_weather<arg_key>city</arg_key><arg_value>Rome</arg_value>"
            "<arg_key>extra</arg_key><arg_value>[1, 2]</arg_value></tool_call>",
            (("get_weather", {"city": "Rome", "extra": [1, 2]}),),
        ),
        c("thinking_off_then_reasoning_free_call", "</think>" + glm47(WEATHER), WEATHER),
    ]
