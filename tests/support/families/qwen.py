"""Qwen3 (Hermes JSON in `<tool_call>`, Qwen-Qwen3-0.6B.jinja), Qwen3.5 (XML parameters, thinking opened by
the prompt, Qwen3.5-4B.jinja) and Qwen3-Coder (XML, no thinking, Qwen3-Coder.jinja), as their templates
write them; Qwen3.5's call ending its think block as llama.cpp's Qwen3.5 parser reads it."""

from __future__ import annotations

import json
from typing import Any

from .common import WEATHER, Calls, Case, Format, scenarios

THINK_OFF = "<think>\n\n</think>\n\n"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def hermes(calls: Calls) -> str:
    return "\n".join(
        f'<tool_call>\n{{"name": "{n}", "arguments": {_json(a)}}}\n</tool_call>' for n, a in calls
    )


def _xml_value(value: Any) -> str:
    """The template's `args_value | tojson` for mappings and lists, `| string` (Python's) for the rest."""
    return _json(value) if isinstance(value, dict | list) else str(value)


def _function(name: str, args: dict[str, Any]) -> str:
    params = "".join(f"<parameter={k}>\n{_xml_value(v)}\n</parameter>\n" for k, v in args.items())
    return f"<function={name}>\n{params}</function>"


def qwen_xml(calls: Calls) -> str:
    return "\n".join(f"<tool_call>\n{_function(n, a)}\n</tool_call>" for n, a in calls)


def _think(text: str) -> str:
    return f"<think>\n{text}\n</think>\n\n"


QWEN3 = Format(
    "qwen3",
    hermes,
    markers=("<tool_call>", "</tool_call>", "<think>", "</think>"),
    own_markers=("</tool_call>", "<tool_call>", '{"name": "x"}'),
    think=_think,
    disabled_prompt=THINK_OFF,
    disabled_echo=THINK_OFF,
    calls_in_reasoning=True,
)
QWEN3_5 = Format(
    "qwen3_5",
    qwen_xml,
    markers=("<tool_call>", "</tool_call>", "<think>", "</think>"),
    own_markers=("</function>", "</tool_call>", "<parameter=mode>", "<function=x>"),
    think=_think,
    thinking_prompt="<think>\n",
    disabled_prompt=THINK_OFF,
    disabled_echo=THINK_OFF,
    calls_in_reasoning=True,
    separator="\n\n",
)
QWEN3_CODER = Format(
    "qwen3_coder",
    qwen_xml,
    markers=("<tool_call>", "</tool_call>"),
    own_markers=("</function>", "</tool_call>", "<parameter=mode>"),
    separator="\n",
)


def cases() -> list[Case]:
    c5, coder = QWEN3_5.case, QWEN3_CODER.case
    code = 'def hello():\n    print("Hello, world!")\n\nhello()'
    return [
        *scenarios(QWEN3),
        QWEN3.case(
            "list_in_one_block",
            f"<tool_call>\n{_json([{'name': 'ping', 'arguments': {}}] * 2)}\n</tool_call>",
            (("ping", {}),) * 2,
        ),
        QWEN3.case(
            "openai_shape",
            '<tool_call>\n{"type": "function", "function": {"name": "ping", "arguments": "{}"}}'
            "\n</tool_call>",
            (("ping", {}),),
        ),
        # The first block never closed: its text is content (never read again for calls).
        QWEN3.case(
            "unclosed_block_then_another",
            '<tool_call>\n{"name": "ping", "arguments": {}}\n' + hermes(WEATHER),
            WEATHER,
            content='{"name": "ping", "arguments": {}}',
        ),
        QWEN3.case(
            "opener_in_reasoning_that_is_no_call",
            "<think>I could use <tool_call> tags here.</think>The answer is 4.",
            content="The answer is 4.",
            reasoning="I could use  tags here.",
        ),
        QWEN3.case(
            "unclosed_call_in_reasoning_stays_reasoning",
            'I could write <tool_call>{"name": "get_weather"} later.</think>Sunny',
            content="Sunny",
            reasoning='I could write {"name": "get_weather"} later.',
            starts_in_reasoning=True,
        ),
        *scenarios(QWEN3_5),
        c5(
            "code_keeps_indentation",
            qwen_xml((("write_file", {"path": "a.py", "content": code}),)),
            (("write_file", {"path": "a.py", "content": code}),),
        ),
        c5(
            "trailing_newline_kept",
            qwen_xml((("write_file", {"path": "a.c", "content": "#include\n"}),)),
            (("write_file", {"path": "a.c", "content": "#include\n"}),),
        ),
        c5(
            "no_newlines_in_tags",
            "<tool_call><function=write_file><parameter=path>/tmp/build.sh</parameter>"
            "<parameter=content>echo hi</parameter></function></tool_call>",
            (("write_file", {"path": "/tmp/build.sh", "content": "echo hi"}),),
        ),
        c5(
            "issue_repro_cut_at_stop",
            "<tool_call><function=write_file><parameter=path>/tmp/build.sh</parameter>"
            "<parameter=content>rm -rf /",
            content=(
                "<function=write_file><parameter=path>/tmp/build.sh</parameter><parameter=content>rm -rf /"
            ),
        ),
        c5(
            "python_spelling_typed",
            "<tool_call>\n<function=set_record>\n<parameter=repeat>\nTrue\n</parameter>\n<parameter=note>\nNone\n</parameter>\n</function>\n</tool_call>",
            (("set_record", {"repeat": True, "note": None}),),
        ),
        c5(
            "undeclared_parameter_is_text",
            "<tool_call>\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n<parameter=extra>\n12\n</parameter>\n</function>\n</tool_call>",
            (("get_weather", {"city": "Rome", "extra": "12"}),),
        ),
        c5("prompt_opened_call_without_reasoning", qwen_xml(WEATHER), WEATHER, starts_in_reasoning=True),
        *scenarios(QWEN3_CODER),
        coder("without_the_wrapper", _function("get_weather", {"city": "Paris"}), WEATHER),
        coder(
            "prose_mentions_the_tag",
            "Use <tool_call> tags to call tools.",
            content="Use  tags to call tools.",
        ),
    ]
