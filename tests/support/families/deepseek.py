# ruff: noqa: RUF001, RUF002 - DeepSeek's special tokens are spelled with fullwidth bars
"""DeepSeek V3.2 (`<｜DSML｜function_calls>`) and V4 / V4.1 (`<｜DSML｜tool_calls>`, deepseek-ai-
DeepSeek-V4 and V4-Flash-0731 templates): DSML invokes with `string="true|false"`
parameters, as the templates and DeepSeek's encoding_dsv32.py write them; a call ending the
think block, as llama.cpp's DSML parser reads it; a self-closing invoke and one without
parameters, as vLLM's DSML parsers read them."""

from __future__ import annotations

import json
from typing import Any

from .common import WEATHER, Calls, Case, Format, scenarios

DSML = "｜DSML｜"


def _parameter(key: str, value: Any) -> str:
    if isinstance(value, str):
        return f'<{DSML}parameter name="{key}" string="true">{value}</{DSML}parameter>\n'
    encoded = json.dumps(value, ensure_ascii=False)
    return f'<{DSML}parameter name="{key}" string="false">{encoded}</{DSML}parameter>\n'


def dsml(block: str) -> Any:
    def render(calls: Calls) -> str:
        invokes = "".join(
            f'<{DSML}invoke name="{n}">\n'
            + "".join(_parameter(k, v) for k, v in a.items())
            + f"</{DSML}invoke>\n"
            for n, a in calls
        )
        return f"<{DSML}{block}>\n{invokes}</{DSML}{block}>"

    return render


MARKERS = (DSML, "<think>", "</think>", "<｜end▁of▁sentence｜>")
CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"


def v3_1(calls: Calls) -> str:
    """deepseek-ai-DeepSeek-V3.1.jinja: `name<｜tool▁sep｜>{json}` per call."""
    items = "".join(f"{CALL_BEGIN}{n}{SEP}{json.dumps(a, ensure_ascii=False)}{CALL_END}" for n, a in calls)
    return f"{CALLS_BEGIN}{items}{CALLS_END}"


def r1(calls: Calls) -> str:
    """DeepSeek V3 / R1 (llama-cpp-deepseek-r1.jinja): `function<｜tool▁sep｜>name` and a ```json fence."""
    items = "".join(
        f"{CALL_BEGIN}function{SEP}{n}\n```json\n{json.dumps(a, ensure_ascii=False)}\n```{CALL_END}"
        for n, a in calls
    )
    return f"{CALLS_BEGIN}{items}{CALLS_END}"


V3_MARKERS = ("<｜tool▁", "<think>", "</think>", "<｜end▁of▁sentence｜>")
V3_1 = Format(
    "deepseek_v3_1",
    v3_1,
    markers=V3_MARKERS,
    own_markers=(CALL_END, CALLS_END, SEP),
    think=lambda text: f"<think>{text}</think>",
    thinking_prompt="<think>",
    disabled_prompt="<think></think>",
    disabled_echo="<think></think>",
)
R1 = Format(
    "deepseek_r1",
    r1,
    markers=V3_MARKERS,
    own_markers=(CALL_END, "```", CALLS_END),
    think=lambda text: f"<think>\n{text}\n</think>\n\n",
    thinking_prompt="<think>\n",
)
V3_2 = Format(
    "deepseek_v3_2",
    dsml("function_calls"),
    markers=MARKERS,
    own_markers=(f"</{DSML}parameter>", f"</{DSML}invoke>", f"</{DSML}function_calls>"),
    think=lambda text: f"<think>{text}</think>",
    thinking_prompt="<think>",
    disabled_prompt="<think></think>",
    disabled_echo="<think></think>",
    calls_in_reasoning=True,
    separator="\n\n",
)
V4 = Format(
    "deepseek_v4",
    dsml("tool_calls"),
    markers=MARKERS,
    own_markers=(f"</{DSML}parameter>", f"</{DSML}invoke>", f"</{DSML}tool_calls>"),
    think=lambda text: f"<think>{text}</think>",
    thinking_prompt="<think>",
    disabled_prompt="</think>",
    disabled_echo="</think>",
    calls_in_reasoning=True,
    separator="\n\n",
)


def cases() -> list[Case]:
    c2, c4 = V3_2.case, V4.case
    return [
        *scenarios(V3_2),
        c2(
            "self_closing_invoke",
            f'<{DSML}function_calls>\n<{DSML}invoke name="ping"/>\n</{DSML}function_calls>',
            (("ping", {}),),
        ),
        c2(
            "invoke_without_parameters",
            f'<{DSML}function_calls>\n<{DSML}invoke name="ping">\n</{DSML}invoke>\n</{DSML}function_calls>',
            (("ping", {}),),
        ),
        c2(
            "string_false_is_json",
            f'<{DSML}function_calls>\n<{DSML}invoke name="get_weather">\n'
            f'<{DSML}parameter name="extra" string="false">{{"a": [1]}}</{DSML}parameter>\n'
            f"</{DSML}invoke>\n</{DSML}function_calls>",
            (("get_weather", {"extra": {"a": [1]}}),),
        ),
        c2(
            "schema_string_wins",
            f'<{DSML}function_calls>\n<{DSML}invoke name="set_record">\n'
            f'<{DSML}parameter name="label" string="false">3</{DSML}parameter>\n'
            f"</{DSML}invoke>\n</{DSML}function_calls>",
            (("set_record", {"label": "3"}),),
        ),
        c2("end_of_sentence_dropped", V3_2.render(WEATHER) + "<｜end▁of▁sentence｜>", WEATHER),
        *scenarios(V4),
        c4("thinking_off_prompt_then_content", "Sunny.", content="Sunny."),
        c4(
            "call_right_after_reasoning",
            "Need it.\n\n" + V4.render(WEATHER),
            WEATHER,
            reasoning="Need it.",
            starts_in_reasoning=True,
        ),
        *scenarios(V3_1),
        V3_1.case(
            "reasoning_content_then_calls",
            "REASONING</think>CONTENT" + v3_1(WEATHER),
            WEATHER,
            content="CONTENT",
            reasoning="REASONING",
            starts_in_reasoning=True,
        ),
        *scenarios(R1),
    ]
