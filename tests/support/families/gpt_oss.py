"""gpt-oss harmony, as openai-gpt-oss-120b.jinja writes it and llama.cpp's gpt-oss parser reads it: an
analysis channel (reasoning), a commentary preamble, calls as messages whose header names the function
(`<|channel|>commentary to=functions.f <|constrain|>json<|message|>{...}`, or `to=` in the role header),
and the final channel. The generation prompt ends with `<|start|>assistant`, and `<|call|>` /
`<|return|>` end the generation, so llama-server drops them."""

from __future__ import annotations

import json

from .common import WEATHER, Calls, Case, Format, scenarios

ROLE = "<|start|>assistant"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def harmony(calls: Calls) -> str:
    messages = [
        f"<|channel|>commentary to=functions.{n} <|constrain|>json<|message|>{_json(a)}" for n, a in calls
    ]
    return ("<|call|>" + ROLE).join(messages)


def _think(text: str) -> str:
    return f"<|channel|>analysis<|message|>{text}<|end|>{ROLE}"


GPT_OSS = Format(
    "gpt_oss",
    harmony,
    markers=("<|channel|>", "<|message|>", "<|call|>", "<|start|>", "<|constrain|>", "<|end|>", "<|return|>"),
    own_markers=("<|call|>", "<|end|>", "<|channel|>final<|message|>"),
    think=_think,
    answer=lambda text: f"<|channel|>final<|message|>{text}",
)


def cases() -> list[Case]:
    c = GPT_OSS.case
    args = '{"city": "Paris"}'
    return [
        *scenarios(GPT_OSS),
        c(
            "role_header_recipient",
            f" to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{args}",
            WEATHER,
        ),
        c("role_header_constrain", f" to=functions.get_weather<|constrain|>json<|message|>{args}", WEATHER),
        c(
            "role_header_after_analysis",
            _think("Need weather.") + f" to=functions.get_weather<|channel|>commentary json<|message|>{args}",
            WEATHER,
            reasoning="Need weather.",
        ),
        c(
            "no_analysis_channel",
            f"<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{args}<|call|>",
            WEATHER,
        ),
        c(
            "final_answer",
            _think("Easy.") + "<|channel|>final<|message|>Sunny, 21 °C.<|return|>",
            content="Sunny, 21 °C.",
            reasoning="Easy.",
        ),
        c(
            "preamble_then_call",
            "<|channel|>commentary<|message|>Checking.<|end|>" + ROLE + harmony(WEATHER),
            WEATHER,
            content="Checking.",
        ),
        c(
            "call_in_analysis_channel",
            f"<|channel|>analysis to=functions.get_weather <|constrain|>json<|message|>{args}",
            WEATHER,
        ),
        c(
            "prose_mentions_to_functions",
            "Send it to=functions.get_weather later.",
            content="Send it to=functions.get_weather later.",
        ),
    ]
