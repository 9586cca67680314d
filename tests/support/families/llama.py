"""Llama 3.1 / 3.2 / 3.3 (bare `{"name", "parameters"}` JSON for custom tools and
`<|python_tag|>tool.call(..)` for built-ins, meta-llama-Llama-3.x templates; `<|python_tag|>` JSON with
`;` between calls, as llama.cpp's Llama 3.x parser reads it) and Llama 4 (pythonic `[f(a=1)]` lists,
optionally in `<|python_start|>`)."""

from __future__ import annotations

import json
from typing import Any

from .common import TWO, WEATHER, Calls, Case, Format, scenarios


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def llama3(calls: Calls) -> str:
    return "\n".join(f'{{"name": "{n}", "parameters": {_json(a)}}}' for n, a in calls)


def python_tag(calls: Calls) -> str:
    return "<|python_tag|>" + "; ".join(f'{{"name": "{n}", "parameters": {_json(a)}}}' for n, a in calls)


def _literal(value: Any) -> str:
    """A Python literal as Llama 4 writes it: single-quoted strings with `\\'` escapes."""
    if isinstance(value, str):
        body = repr(value)
        if body.startswith('"'):
            body = "'" + body[1:-1].replace("'", "\\'") + "'"
        return body
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def pythonic(calls: Calls) -> str:
    return (
        "["
        + ", ".join(f"{n}(" + ", ".join(f"{k}={_literal(v)}" for k, v in a.items()) + ")" for n, a in calls)
        + "]"
    )


def llama4(calls: Calls) -> str:
    return "<|python_start|>" + pythonic(calls) + "<|python_end|>"


LLAMA3 = Format(
    "llama3",
    llama3,
    markers=("<|python_tag|>", "<|eom_id|>", "<|eot_id|>"),
    own_markers=("<|eom_id|>", "<|python_tag|>", "}"),
)
LLAMA3_TAG = Format(
    "llama3_python_tag", python_tag, markers=LLAMA3.markers, own_markers=("<|eom_id|>", "; ", '"}')
)
LLAMA4 = Format(
    "llama4",
    llama4,
    markers=("<|python_start|>", "<|python_end|>"),
    own_markers=("<|python_end|>", "')]", "Martha's"),
    one_structure=True,
)
LLAMA4_BARE = Format(
    "llama4_bare",
    pythonic,
    markers=(),
    own_markers=("')]", "])", "Martha's"),
    one_structure=True,
)


def cases() -> list[Case]:
    t = LLAMA3_TAG.case
    vineyard = (("get_weather", {"city": "Martha's Vineyard"}),)
    return [
        *scenarios(LLAMA3),
        *scenarios(LLAMA3_TAG),
        t("eom_closes", python_tag(WEATHER) + "<|eom_id|>", WEATHER),
        t(
            "builtin_call",
            '<|python_tag|>search.call(q="Roman dodecahedron", exact=True)',
            (("search", {"q": "Roman dodecahedron", "exact": True}),),
        ),
        t(
            "builtin_cut",
            '<|python_tag|>search.call(q="Roman dodec',
            truncated=True,
            content='search.call(q="Roman dodec',
        ),
        t(
            "type_function_key",
            '<|python_tag|>{"type": "function", "name": "ping", "parameters": {}}',
            (("ping", {}),),
        ),
        LLAMA3.case("arguments_key", '{"name": "get_weather", "arguments": {"city": "Paris"}}', WEATHER),
        LLAMA3.case(
            "in_a_json_fence",
            'Calling it.\n```json\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n```',
            WEATHER,
            content="Calling it.",
        ),
        *scenarios(LLAMA4),
        LLAMA4.case(
            "escaped_quote",
            "<|python_start|>[get_weather(city='Martha\\'s Vineyard')]<|python_end|>",
            vineyard,
        ),
        LLAMA4.case("without_the_end_token", "<|python_start|>" + pythonic(TWO), TWO),
        *scenarios(LLAMA4_BARE),
        LLAMA4_BARE.case("escaped_quote", "[get_weather(city='Martha\\'s Vineyard')]", vineyard),
        LLAMA4_BARE.case("double_quotes", '[get_weather(city="Paris")]', WEATHER),
    ]
