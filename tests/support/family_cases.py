# ruff: noqa: RUF001 - DeepSeek's special tokens are spelled with fullwidth bars
"""Model replies in every family's native tool-call format, written from each format's description
(llama.cpp's chat parsers, model cards), for the family tests. One `Writer` per family renders a list
of calls the way that family's model writes them; adding a family = one entry in WRITERS."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Calls = list[tuple[str, dict[str, Any]]]

OFFERED = ("get_weather", "search", "ping")

CASES: dict[str, Calls] = {
    "single": [("get_weather", {"city": "Paris"})],
    "parallel": [("get_weather", {"city": "Paris"}), ("search", {"q": "café ☕ 東京"})],
    "no_arguments": [("ping", {})],
    "nested_unicode": [
        ("search", {"q": "naïve ✓ 𝄞", "filters": {"tags": ["a", "b"], "limit": 3}, "exact": True})
    ],
}


def _j(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _xml_value(value: object) -> str:
    return value if isinstance(value, str) else _j(value)


def _gemma4_value(value: object) -> str:
    if isinstance(value, str):
        return f'<|"|>{value}<|"|>'
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_gemma4_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_gemma4_value(v) for v in value) + "]"
    return _j(value)


def _pythonic(name: str, args: dict[str, Any]) -> str:
    return f"{name}(" + ", ".join(f"{k}={v!r}" for k, v in args.items()) + ")"


def _deepseek_v3(calls: Calls) -> str:
    items = "".join(
        f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>{n}\n```json\n{_j(a)}\n```<｜tool▁call▁end｜>"
        for n, a in calls
    )
    return f"<｜tool▁calls▁begin｜>{items}<｜tool▁calls▁end｜>"


def _deepseek_v31(calls: Calls) -> str:
    items = "".join(f"<｜tool▁call▁begin｜>{n}<｜tool▁sep｜>{_j(a)}<｜tool▁call▁end｜>" for n, a in calls)
    return f"<｜tool▁calls▁begin｜>{items}<｜tool▁calls▁end｜>"


def _harmony(calls: Calls) -> str:
    return "<|start|>assistant".join(
        f"<|channel|>commentary to=functions.{n} <|constrain|>json<|message|>{_j(a)}<|call|>"
        for n, a in calls
    )


@dataclass(frozen=True)
class Writer:
    family: str
    render: Callable[[Calls], str]
    markers: tuple[str, ...]  # what must never reach content
    reply_prefix: str = ""  # the prompt ended with it (Functionary v3.2)
    prose_before: str = "Let me check that for you.\n"


WRITERS: tuple[Writer, ...] = (
    Writer(
        "hermes",
        lambda cs: "\n".join(f"<tool_call>\n{_j({'name': n, 'arguments': a})}\n</tool_call>" for n, a in cs),
        ("<tool_call>", "</tool_call>"),
    ),
    Writer(
        "qwen3_coder",
        lambda cs: "\n".join(
            "<tool_call>\n<function="
            + n
            + ">\n"
            + "".join(f"<parameter={k}>\n{_xml_value(v)}\n</parameter>\n" for k, v in a.items())
            + "</function>\n</tool_call>"
            for n, a in cs
        ),
        ("<tool_call>", "</tool_call>", "<function=", "<parameter="),
    ),
    Writer(
        "glm",
        lambda cs: "".join(
            f"<tool_call>{n}\n"
            + "".join(
                f"<arg_key>{k}</arg_key>\n<arg_value>{_xml_value(v)}</arg_value>\n" for k, v in a.items()
            )
            + "</tool_call>"
            for n, a in cs
        ),
        ("<tool_call>", "</tool_call>", "<arg_key>", "<arg_value>"),
    ),
    Writer(
        "llama3",
        lambda cs: (
            "<|python_tag|>" + "; ".join(_j({"name": n, "parameters": a}) for n, a in cs) + "<|eom_id|>"
        ),
        ("<|python_tag|>", "<|eom_id|>"),
    ),
    Writer(
        "llama3_bare_json",
        lambda cs: "\n".join(_j({"type": "function", "name": n, "parameters": a}) for n, a in cs),
        ('"parameters"',),
    ),
    Writer(
        "llama4",
        lambda cs: "<|python_start|>[" + ", ".join(_pythonic(n, a) for n, a in cs) + "]<|python_end|>",
        ("<|python_start|>", "<|python_end|>"),
    ),
    Writer("llama4_bare", lambda cs: "[" + ", ".join(_pythonic(n, a) for n, a in cs) + "]", ("(",)),
    Writer(
        "mistral_v11",
        lambda cs: "".join(f"[TOOL_CALLS]{n}[ARGS]{_j(a)}" for n, a in cs),
        ("[TOOL_CALLS]", "[ARGS]"),
    ),
    Writer(
        "mistral_call_id",
        lambda cs: "".join(f"[TOOL_CALLS]{n}[CALL_ID]a1B2c3D4e[ARGS]{_j(a)}" for n, a in cs),
        ("[TOOL_CALLS]", "[ARGS]", "[CALL_ID]"),
    ),
    Writer(
        "mistral_v3",
        lambda cs: "[TOOL_CALLS] " + _j([{"name": n, "arguments": a} for n, a in cs]),
        ("[TOOL_CALLS]",),
    ),
    Writer("deepseek_v3", _deepseek_v3, ("｜tool▁", "```")),
    Writer("deepseek_v31", _deepseek_v31, ("｜tool▁", "end▁of▁sentence")),
    Writer("gpt_oss", _harmony, ("<|channel|>", "<|message|>", "<|call|>", "to=functions", "<|start|>")),
    Writer(
        "gemma3",
        lambda cs: "```tool_code\n" + "\n".join(_pythonic(n, a) for n, a in cs) + "\n```",
        ("```", "tool_code"),
    ),
    Writer(
        "gemma4",
        lambda cs: "".join(f"<|tool_call>call:{n}{_gemma4_value(a)}<tool_call|>" for n, a in cs),
        ("<|tool_call>", "<tool_call|>", "call:", '<|"|>'),
    ),
    Writer(
        "kimi_k2",
        lambda cs: (
            "<|tool_calls_section_begin|>"
            + "".join(
                f"<|tool_call_begin|>functions.{n}:{i}<|tool_call_argument_begin|>{_j(a)}<|tool_call_end|>"
                for i, (n, a) in enumerate(cs)
            )
            + "<|tool_calls_section_end|>"
        ),
        ("<|tool_call", "functions."),
    ),
    Writer(
        "functionary_v3_1",
        lambda cs: "".join(f"<function={n}>{_j(a)}</function>" for n, a in cs),
        ("<function=", "</function>"),
    ),
    Writer(
        "functionary_v3_2",
        lambda cs: ">>>".join(f"{n}\n{_j(a)}" for n, a in cs),
        (">>>",),
        reply_prefix=">>>",
        prose_before="all\nLet me check that for you.\n>>>",
    ),
    Writer(
        "command_r",
        lambda cs: "Action: ```json\n" + _j([{"tool_name": n, "parameters": a} for n, a in cs]) + "\n```",
        ("Action:", "```", "tool_name"),
    ),
    Writer(
        "command_r7b",
        lambda cs: (
            "<|START_ACTION|>"
            + _j([{"tool_call_id": str(i), "tool_name": n, "parameters": a} for i, (n, a) in enumerate(cs)])
            + "<|END_ACTION|>"
        ),
        ("<|START_ACTION|>", "<|END_ACTION|>"),
    ),
    Writer(
        "granite",
        lambda cs: "<|tool_call|>" + _j([{"name": n, "arguments": a} for n, a in cs]),
        ("<|tool_call|>",),
    ),
)

# Reasoning in every spelling: (reply text, starts_in_reasoning, expected reasoning, expected content).
REASONING_CASES: tuple[tuple[str, bool, str, str], ...] = (
    (
        "<think>\nThe user wants a greeting.\n</think>\n\nHello!",
        False,
        "The user wants a greeting.",
        "Hello!",
    ),
    ("[THINK]Short and polite.[/THINK]Bonjour !", False, "Short and polite.", "Bonjour !"),
    ("They asked for 2+2.\n</think>\n\n4", True, "They asked for 2+2.", "4"),
    (
        "<|channel|>analysis<|message|>Need the weather.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Sunny.",
        False,
        "Need the weather.",
        "Sunny.",
    ),
    ("<|START_THINKING|>plan<|END_THINKING|><|START_RESPONSE|>Done.<|END_RESPONSE|>", False, "plan", "Done."),
    ("<|channel>thought\nhmm<channel|>Hi there", False, "hmm", "Hi there"),
    ("No thinking here.", False, "", "No thinking here."),
    ("<think>cut off mid-thou", False, "cut off mid-thou", ""),
)
