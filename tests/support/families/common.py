"""Our own corpus of model replies in every current family's native format, written the way each family's
reference writes them (its chat template in llama.cpp's models/templates, DeepSeek's encoding script,
the family parsers of llama.cpp, vLLM and SGLang), with the reply each must parse into.

Each family module describes its format once (`Format`: how a reply with some calls is written, how the
model writes a think block, what the thinking-on and thinking-off generation prompts end with) and adds
the forms only that family writes. `scenarios` turns a format into the shared cases: single, parallel,
no-argument and nested calls, unicode and numeric-looking strings, markers inside values, text around
calls, reasoning first (and a call inside it where the reference allows one), cut-offs in reasoning, in a
name and in a value, thinking disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

Args = dict[str, Any]
Calls = tuple[tuple[str, Args], ...]


def _fn(name: str, properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} (test tool)",
            "parameters": {"type": "object", "properties": properties, "required": list(required)},
        },
    }


# The offered tools, with the schemas that type tag-format values.
TOOLS: tuple[dict[str, Any], ...] = (
    _fn(
        "get_weather",
        {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]},
            "days": {"type": "integer"},
        },
        ("city",),
    ),
    _fn(
        "write_file",
        {"path": {"type": "string"}, "content": {"type": "string"}, "executable": {"type": "boolean"}},
        ("path", "content"),
    ),
    _fn(
        "search",
        {
            "q": {"type": "string"},
            "filters": {
                "type": "object",
                "properties": {
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer"},
                },
            },
            "exact": {"type": "boolean"},
        },
        ("q",),
    ),
    _fn("ping", {}),
    _fn(
        "set_record",
        {
            "label": {"type": "string"},
            "account_id": {"type": "string"},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "repeat": {"type": "boolean"},
            "meta": {"type": "object"},
            "tags": {"type": "array"},
            "note": {"type": ["string", "null"]},
        },
    ),
)
STRING_PARAMETERS = {
    t["function"]["name"]: {
        k for k, v in t["function"]["parameters"]["properties"].items() if v.get("type") == "string"
    }
    for t in TOOLS
}


@dataclass(frozen=True)
class Case:
    """One reply and what it must parse into. `calls` are the closed calls, in order; `content` and
    `reasoning` as the parsed reply has them (None when empty); `truncated`: finish_reason "length"."""

    family: str
    name: str
    text: str
    calls: Calls = ()
    content: str | None = None
    reasoning: str | None = None
    starts_in_reasoning: bool = False
    reply_prefix: str = ""
    truncated: bool = False
    forced: bool = False
    markers: tuple[str, ...] = ()  # the family's special tokens: never in content or reasoning
    ambiguous_ends: tuple[str, ...] = ()  # a reply cut right after these is a closed call (see Format)

    @property
    def id(self) -> str:
        return f"{self.family}:{self.name}"


@dataclass(frozen=True)
class Format:
    """How one family version writes a reply.

    `render(calls)`: a reply made of these calls (a parallel one when several), as the template writes
    it. `think(text)`: a think block the model writes itself. `thinking_prompt` / `disabled_prompt`: what
    the generation prompt ends with when thinking is on / off ("" when the template has no such switch);
    `disabled_echo`: what a thinking-off reply may start with (the prompt's closed empty block, repeated by
    llama-server). `calls_in_reasoning`: the reference lets a call end a think block. `own_markers`: its
    markers, quoted inside a value by the marker cases. `ambiguous_ends`: closing tags after which a reply
    that stopped (finish_reason "stop") is a closed call though a value quoted them (GLM's missing last
    `</arg_value>`). `one_structure`: a parallel reply is one list (Llama 4, Gemma 3, Mistral v3,
    Granite 3), so a cut in its second call leaves no call."""

    family: str
    render: Callable[[Calls], str]
    markers: tuple[str, ...]
    own_markers: tuple[str, ...]
    think: Callable[[str], str] | None = None
    thinking_prompt: str = ""
    disabled_prompt: str = ""
    disabled_echo: str = ""
    calls_in_reasoning: bool = False
    reply_prefix: str = ""
    ambiguous_ends: tuple[str, ...] = ()
    separator: str = "\n"  # between prose and the calls
    one_structure: bool = False  # parallel calls are one list, which is a call only once it closes
    answer: Callable[[str], str] = str  # the final answer after a think block

    def case(self, name: str, text: str, calls: Calls = (), **kwargs: Any) -> Case:
        return Case(
            self.family,
            name,
            text,
            calls,
            reply_prefix=self.reply_prefix,
            markers=self.markers,
            ambiguous_ends=self.ambiguous_ends,
            **kwargs,
        )


WEATHER: Calls = (("get_weather", {"city": "Paris"}),)
TWO: Calls = (("get_weather", {"city": "Paris", "unit": "c"}), ("search", {"q": "café ☕ 東京"}))
THREE_SAME: Calls = tuple(("get_weather", {"city": c}) for c in ("Oslo", "Lima", "Kyiv"))
PING: Calls = (("ping", {}),)
NESTED: Calls = (("search", {"q": "naïve ✓ 𝄞", "filters": {"tags": ["a", "b"], "limit": 3}, "exact": True}),)
UNICODE: Calls = (("write_file", {"path": "/tmp/日本語.txt", "content": "Grüße, мир! 👋 \u2028 end"}),)
NUMERIC_STRINGS: Calls = (
    ("set_record", {"account_id": "123456789012345678901", "label": "3", "note": "none"}),
    ("set_record", {"label": "True", "account_id": '{"a": 1}', "note": "[1, 2]"}),
)
TYPED: Calls = (
    (
        "set_record",
        {
            "count": 42,
            "ratio": 0.25,
            "repeat": False,
            "meta": {"k": [1, {"x": None}]},
            "tags": ["x", 2],
            "note": None,
        },
    ),
)
SPACES: Calls = (
    ("write_file", {"path": " padded ", "content": "    def f():\n        return 1\n\n"}),
    ("write_file", {"path": "/tmp/t", "content": "\n\nleading blank lines\ttab"}),
)
LONG: Calls = (
    (
        "write_file",
        {"path": "/tmp/big.py", "content": "".join(f"line {i}: x = {i} * 2\n" for i in range(40))},
    ),
)
QUOTES: Calls = (
    ("write_file", {"path": "C:\\tmp\\q.txt", "content": 'She said "hi" \\ then \'bye\' {"not": "json"}'}),
)
EMPTY: Calls = (("get_weather", {"city": ""}),)
DIGITS: Calls = (("set_record", {"label": "0042", "account_id": "1e5"}),)


def markers_inside(fmt: Format) -> Calls:
    """A write_file whose content explains formats, this family's own markers first."""
    quoted = " then ".join(fmt.own_markers)
    others = "<tool_call> </tool_call> </think> [TOOL_CALLS] <|python_tag|> ```json"
    return (
        ("write_file", {"path": "/tmp/FORMAT.md", "content": f"Close with {quoted} then stop. {others}"}),
    )


def scenarios(fmt: Format) -> list[Case]:
    """The cases every family shares; a family module adds the forms only it writes."""
    r, case = fmt.render, fmt.case
    sep = fmt.separator
    cases = [
        case("single", r(WEATHER), WEATHER),
        case("parallel", r(TWO), TWO),
        case("parallel_same_tool", r(THREE_SAME), THREE_SAME),
        case("parallel_mixed", r(PING + WEATHER + NESTED), PING + WEATHER + NESTED),
        case("no_arguments", r(PING), PING),
        case("nested", r(NESTED), NESTED),
        case("unicode", r(UNICODE), UNICODE),
        case("numeric_looking_strings", r(NUMERIC_STRINGS), NUMERIC_STRINGS),
        case("typed_values", r(TYPED), TYPED),
        case("whitespace_kept", r(SPACES), SPACES),
        case("markers_inside_values", r(markers_inside(fmt)), markers_inside(fmt)),
        case("long_value", r(LONG), LONG),
        case("quotes_and_backslashes", r(QUOTES), QUOTES),
        case("empty_string", r(EMPTY), EMPTY),
        case("digit_strings", r(DIGITS), DIGITS),
        case(
            "text_before_and_after",
            "Checking.\n" + r(WEATHER) + "\nDone.",
            WEATHER,
            content="Checking.\n\nDone.",
        ),
        case(
            "text_before",
            "Let me check the weather." + sep + r(WEATHER),
            WEATHER,
            content="Let me check the weather.",
        ),
        case("text_after", r(WEATHER) + sep + "I asked for Paris.", WEATHER, content="I asked for Paris."),
        case("prose_only", "Paris is sunny today, 21 °C.", content="Paris is sunny today, 21 °C."),
        case("unknown_tool", r((("delete_everything", {"really": True}),)), content=None),
        case("cut_in_name", _cut_in_name(r(WEATHER)), truncated=True),
        case("cut_in_value", _cut_in_value(r(LONG)), truncated=True),
        case(
            "cut_after_first_call",
            _cut_after_first(r, TWO),
            () if fmt.one_structure else TWO[:1],
            truncated=True,
        ),
        case(
            "cut_in_second_name",
            _cut_in_second_name(r, TWO),
            () if fmt.one_structure else TWO[:1],
            truncated=True,
        ),
        case(
            "unclosed_at_stop",
            _cut_in_value(
                r((("write_file", {"path": "/tmp/build.sh", "content": "rm -rf / --no-preserve-root"}),)),
                "rm -rf /",
            ),
        ),
    ]
    return [_expected_text(c, fmt) for c in cases] + _reasoning(fmt)


def _reasoning(fmt: Format) -> list[Case]:
    r, case = fmt.render, fmt.case
    cases: list[Case] = []
    thought = "The user wants Paris; get_weather fits."
    if fmt.think is not None:
        cases += [
            case("reasoning_then_call", fmt.think(thought) + r(WEATHER), WEATHER, reasoning=thought),
            case(
                "reasoning_then_answer",
                fmt.think(thought) + fmt.answer("Sunny."),
                content="Sunny.",
                reasoning=thought,
            ),
            case(
                "cut_in_reasoning",
                _cut_after(fmt.think(thought), thought[:15]),
                reasoning=thought[:15].strip(),
                truncated=True,
            ),
        ]
    if fmt.thinking_prompt:
        prompted = _prompted(fmt, thought)
        cases += [
            case(
                "prompt_opened_reasoning_then_call",
                prompted + r(WEATHER),
                WEATHER,
                reasoning=thought,
                starts_in_reasoning=True,
            ),
            case(
                "cut_in_prompt_opened_reasoning",
                thought[:20],
                reasoning=thought[:20].strip(),
                starts_in_reasoning=True,
                truncated=True,
            ),
        ]
        if fmt.calls_in_reasoning:
            cases.append(
                case(
                    "call_inside_reasoning",
                    thought + "\n" + r(WEATHER),
                    WEATHER,
                    reasoning=thought,
                    starts_in_reasoning=True,
                )
            )
    if fmt.disabled_prompt:
        cases += [
            case("thinking_disabled", r(WEATHER), WEATHER),
            case("thinking_disabled_echoed", fmt.disabled_echo + r(WEATHER), WEATHER),
        ]
    return cases


def _prompted(fmt: Format, thought: str) -> str:
    """The rest of a think block the prompt opened: the reasoning and the model's own closer."""
    assert fmt.think is not None
    whole = fmt.think(thought)
    return whole[whole.index(thought) :]


def _cut_after(text: str, part: str) -> str:
    return text[: text.index(part) + len(part)]


def _cut_in_name(text: str) -> str:
    for name in ("get_weather", "get_wea"):
        if name in text:
            return text[: text.index(name) + 6]
    return text[: len(text) // 3]


def _cut_in_value(text: str, inside: str = "x = 5") -> str:
    return text[: text.index(inside) + len(inside)]


def _cut_after_first(render: Callable[[Calls], str], calls: Calls) -> str:
    """The parallel reply cut inside its second call's value (the first call is whole)."""
    text = render(calls)
    return text[: text.rindex("東京") + 1]


def _cut_in_second_name(render: Callable[[Calls], str], calls: Calls) -> str:
    text = render(calls)
    return text[: text.rindex("search") + 3]


def _expected_text(case: Case, fmt: Format) -> Case:
    """Cut-off and unknown cases give their text back as content, without the family's special tokens;
    what that text is depends on the format, so the case names only a piece it must hold (the unknown
    tool's argument, the value the cut left), checked with `given_back`."""
    if case.name in GIVES_BACK:
        return replace(case, content=GIVEN_BACK + GIVES_BACK[case.name])
    return case


# The cases that give text back, and what of it the content must hold ("": a name or markup was cut,
# which may leave nothing worth showing, as a harmony header cut off).
GIVES_BACK = {
    "unknown_tool": "really",
    "cut_in_name": "",
    "cut_in_value": "x = 5",
    "cut_after_first_call": "",
    "cut_in_second_name": "",
    "unclosed_at_stop": "rm -rf /",
}
GIVEN_BACK = "\x00given back:"  # a content that is checked by property: see `given_back`


def given_back(expected: str | None) -> str | None:
    """The piece the content must hold when `expected` (a case's content) is checked by property."""
    if expected is None or not expected.startswith(GIVEN_BACK):
        return None
    return expected[len(GIVEN_BACK) :]


__all__ = ["TOOLS", "Case", "Format", "scenarios"]
