"""Mistral v11+ (Devstral, Ministral 3, Magistral: `[TOOL_CALLS]name[ARGS]{...}` per call; Mistral Small 3.2
adds `[CALL_ID]id`; reasoning in `[THINK]...[/THINK]`), and v3 (Mistral Nemo: `[TOOL_CALLS][{...}]`), as
the mistralai-* and unsloth-mistral-Devstral templates write them and llama.cpp's Ministral 3 parser
reads them."""

from __future__ import annotations

import json
from typing import Any

from .common import TWO, WEATHER, Calls, Case, Format, scenarios


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def v11(calls: Calls) -> str:
    return "".join(f"[TOOL_CALLS]{n}[ARGS]{_json(a)}" for n, a in calls)


def small_3_2(calls: Calls) -> str:
    return "".join(
        f"[TOOL_CALLS]{n}[CALL_ID]{'a1B2c3D4e'[: 9 - i]}{i}[ARGS]{_json(a)}" for i, (n, a) in enumerate(calls)
    )


def nemo(calls: Calls) -> str:
    return "[TOOL_CALLS]" + _json(
        [{"name": n, "arguments": a, "id": f"c{i:08d}"} for i, (n, a) in enumerate(calls)]
    )


def _think(text: str) -> str:
    return f"[THINK]{text}[/THINK]"


MARKERS = ("[TOOL_CALLS]", "[ARGS]", "[CALL_ID]", "[THINK]", "[/THINK]")
MINISTRAL = Format("mistral", v11, markers=MARKERS, own_markers=("[ARGS]", "[TOOL_CALLS]", "}"), think=_think)
SMALL = Format("mistral_small_3_2", small_3_2, markers=MARKERS, own_markers=("[CALL_ID]", "[ARGS]"))
NEMO = Format("mistral_nemo", nemo, markers=MARKERS, own_markers=("[TOOL_CALLS]", '"}]'), one_structure=True)


def cases() -> list[Case]:
    m = MINISTRAL.case
    return [
        *scenarios(MINISTRAL),
        m(
            "calls_without_repeated_marker",
            '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris", "unit": "c"}search[ARGS]{"q": "café ☕ 東京"}',
            TWO,
        ),
        m("space_after_marker", '[TOOL_CALLS] get_weather[ARGS]{"city": "Paris"}', WEATHER),
        m("prose_after_calls_is_content", v11(WEATHER) + " Done.", WEATHER, content="Done."),
        m(
            "args_never_closed",
            '[TOOL_CALLS]get_weather[ARGS]{"city": "Par',
            content='get_weather{"city": "Par',
        ),
        *scenarios(SMALL),
        *scenarios(NEMO),
    ]
