"""Text -> tool calls: the spellings models use, what must stay prose, and robustness."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_llamafile import parse_tool_calls
from litellm_llamafile.reply.families import DROPPED_MARKERS, FAMILIES, HARMONY_MAX_HEADER, REASONING
from litellm_llamafile.reply.parsing import ReplyScanner, reply_from_scanner

TOOLS = [
    {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "finish", "parameters": {"type": "object"}}},
]


def calls(text: str, **kwargs: object) -> list[tuple[str, dict[str, object]]]:
    reply = parse_tool_calls(text, TOOLS, **kwargs)  # type: ignore[arg-type]
    return [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "search", "arguments": {"q": "x"}}',
        '```json\n{"name": "search", "arguments": {"q": "x"}}\n```',
        '```\n{"name": "search", "arguments": {"q": "x"}}\n```',
        '{"function": "search", "parameters": {"q": "x"}}',
        '{"type": "function", "function": {"name": "search", "arguments": "{\\"q\\": \\"x\\"}"}}',
        '[TOOL_CALLS] [{"name": "search", "arguments": {"q": "x"}}]',
        '[TOOL_CALLS]search[ARGS]{"q": "x"}',
        '{"tool_calls": [{"name": "search", "arguments": {"q": "x"}}]}',
        '{"name": "search", "arguments": "{\\"q\\": \\"x\\"}"}',
    ],
)
def test_every_common_spelling_becomes_the_same_call(text: str) -> None:
    assert calls(text) == [("search", {"q": "x"})]


def test_array_is_parallel_calls_in_order() -> None:
    text = '[{"name": "search", "arguments": {"q": 1}}, {"name": "finish", "arguments": {}}]'
    assert calls(text) == [("search", {"q": 1}), ("finish", {})]


def test_prose_around_a_call_is_kept_as_content() -> None:
    reply = parse_tool_calls(
        'I will look it up.\n```json\n{"name": "search", "arguments": {"q": "x"}}\n```\nThen answer.', TOOLS
    )
    assert reply.content == "I will look it up.\n\nThen answer."
    assert [c.name for c in reply.tool_calls] == ["search"]


def test_call_ids_are_unique_and_arguments_are_json_strings() -> None:
    reply = parse_tool_calls(
        '[{"name": "search", "arguments": {}}, {"name": "search", "arguments": {}}]', TOOLS
    )
    assert len({c.id for c in reply.tool_calls}) == 2
    assert all(c.id.startswith("call_") and json.loads(c.arguments) == {} for c in reply.tool_calls)


@pytest.mark.parametrize(
    "text",
    [
        "Roman dodecahedrons are small hollow bronze objects.",
        '{"name": "delete_everything", "arguments": {}}',  # not an offered tool
        '{"name": "search", "description": "d", "parameters": {"type": "object"}}',  # an echoed tool schema
        '[{"name": "search", "arguments": {}}, {"name": "nope", "arguments": {}}]',  # not all calls valid
        '{"name": "search", "arguments": [1, 2]}',  # arguments must be an object
        '{"name": "search", "arguments": {"q": ',  # broken JSON
        "Use {braces} and [brackets] freely.",
    ],
)
def test_text_that_is_not_a_valid_call_stays_content(text: str) -> None:
    reply = parse_tool_calls(text, TOOLS)
    assert reply.tool_calls == ()
    assert reply.content == text.strip()


def test_no_tools_offered_means_no_calls() -> None:
    assert parse_tool_calls('{"name": "search", "arguments": {}}', []).tool_calls == ()


def test_markers_never_leak_into_content() -> None:
    reply = parse_tool_calls('[TOOL_CALLS] [{"name": "search", "arguments": {}}]', TOOLS)
    assert reply.content is None


def test_a_cut_off_reply_is_never_a_call() -> None:
    text = '[{"name": "search", "arguments": {"q": 1}}, {"name": "finish", "argu'
    assert calls(text, truncated=True) == []
    # An unclosed bracket in finished prose does not hide a complete call after it.
    assert calls('Use { carefully. {"name": "finish", "arguments": {}}') == [("finish", {})]


@pytest.mark.parametrize(
    "text",
    [
        "{" * 1_000_000,
        "[" * 1_000_000,
        '{"a":' * 200_000,
        "```" * 300_000,
        '"' * 1_000_000,
        '{"x": "' + "a\\" * 500_000,
        "{}" * 500_000,
        '{"name":"search"}' * 60_000,
        "[TOOL_CALLS]" * 80_000,
        "{[" * 500_000,
        '{"name": "search", "arguments": ' * 30_000,
    ],
    ids=lambda t: repr(t[:12]),
)
def test_adversarial_megabyte_replies_never_raise(text: str) -> None:
    reply = parse_tool_calls(text, TOOLS)  # timing lives in bench/linear_time.py, not here
    if not reply.tool_calls:  # nothing lost: all of it is content, minus control markers
        assert (reply.content or "") == text.replace("[TOOL_CALLS]", "").strip()


REPLIES = [
    'Sure!\n```json\n{"name": "search", "arguments": {"q": "roman"}}\n```\nDone.',
    '[TOOL_CALLS]search[ARGS]{"q": "y"}',
    '[{"name": "search", "arguments": {"q": "x"}}, {"function": "finish", "parameters": {}}]',
    'a "quote" then {"name": "finish", "arguments": {"s": "}{\\"]"}} end  ',
    "  plain prose, with ``` a stray fence and [TOOL_CALL",
    'Use { like this. {"name": "finish", "arguments": {}}',
]


def _parse_in_pieces(text: str, cuts: list[int], truncated: bool) -> object:
    scanner = ReplyScanner(frozenset({"search", "finish"}))
    previous = 0
    for cut in sorted(cuts):
        scanner.feed(text[previous:cut])
        previous = cut
    scanner.feed(text[previous:])
    scanner.finish(truncated=truncated)
    return reply_from_scanner(scanner, id_seed="seed")


@pytest.mark.parametrize("text", REPLIES)
@pytest.mark.parametrize("truncated", [False, True])
def test_parse_is_the_same_for_every_single_split_point(text: str, truncated: bool) -> None:
    whole = parse_tool_calls(text, TOOLS, id_seed="seed", truncated=truncated)
    for cut in range(len(text) + 1):
        assert _parse_in_pieces(text, [cut], truncated) == whole, cut


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_parse_is_the_same_for_any_chunking(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from(REPLIES))
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    assert _parse_in_pieces(text, cuts, False) == parse_tool_calls(text, TOOLS, id_seed="seed")


json_ish = st.text(alphabet=st.sampled_from(list('{}[]":,` \nab[TOOL_CALLS]search\\')), max_size=80)


@settings(max_examples=500, deadline=None)
@given(json_ish, st.lists(st.integers(0, 80), max_size=5), st.booleans())
def test_never_raises_and_chunking_never_matters_on_arbitrary_text(
    text: str, cuts: list[int], truncated: bool
) -> None:
    whole = parse_tool_calls(text, TOOLS, id_seed="seed", truncated=truncated)
    assert _parse_in_pieces(text, [min(c, len(text)) for c in cuts], truncated) == whole
    for call in whole.tool_calls:
        assert call.name in {"search", "finish"}
        assert isinstance(json.loads(call.arguments), dict)


# -- hardening: linear time on the known-bad shapes, no exception, nothing lost -----------------------


def test_many_args_markers_in_prose_after_tool_calls_stay_prose() -> None:
    # This took ~10 s when a regex was re-searched from the marker at every [ARGS]; now one pass
    # (bench/linear_time.py prints the doubling ratios).
    text = "[TOOL_CALLS] " + "see the [ARGS] section " * 2000
    reply = parse_tool_calls(text, ["get"])
    assert reply.tool_calls == ()
    assert reply.content == text.replace("[TOOL_CALLS]", "").strip()


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "search", "arguments": "' + "[" * 200_000 + '"}',
        '{"name": "search", "arguments": "' + '{"a":' * 50_000 + '"}',
        "<tool_call>" + "[" * 200_000 + "</tool_call>",
        "[TOOL_CALLS]search[ARGS]" + "[" * 200_000,
        "<|python_tag|>" + "(" * 100_000,
        "[search(" + "[" * 100_000 + ")]",
        "<|tool_call>call:search{" + "a:{" * 100_000 + "}<tool_call|>",
        "<tool_call>\n<function=search>\n<parameter=q>\n"
        + "[" * 100_000
        + "\n</parameter>\n</function>\n</tool_call>",
    ],
    ids=lambda t: repr(t[:16]),
)
def test_deep_nesting_anywhere_never_raises(text: str) -> None:
    reply = parse_tool_calls(text, TOOLS)
    assert reply.tool_calls == () or all(isinstance(json.loads(c.arguments), dict) for c in reply.tool_calls)


_MARKERS = sorted(
    {f.opens for f in FAMILIES}
    | {c for f in FAMILIES for c in (*f.closes, *f.strip)}
    | set(REASONING)
    | {c for cs in REASONING.values() for c in cs}
    | set(DROPPED_MARKERS)
    | {
        "<|start|>",
        "<|message|>",
        "[ARGS]",
        "[CALL_ID]",
        "<arg_key>",
        "</arg_key>",
        "<arg_value>",
        "</arg_value>",
    }
)
_PIECES = [
    *_MARKERS,
    '{"name": "search", "arguments": {"q": "x"}}',
    "search(q='x')",
    "assistant",
    " to=functions.search ",
    "search\n",
    "{",
    "}",
    "[",
    "]",
    '"',
    "\\",
    "`",
    "\n",
    " ",
    "prose",
    "é☕",
]


def _squash(text: str) -> Counter[str]:
    return Counter(c for c in text if not c.isspace())


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=30).map("".join) | st.text(max_size=60),
    st.lists(st.sampled_from(["search", "finish", "get", "é"]), max_size=3),
    st.booleans(),
    st.booleans(),
)
def test_any_text_any_tools_never_raises_and_keeps_every_character(
    text: str, tools: list[str], truncated: bool, inside: bool
) -> None:
    reply = parse_tool_calls(text, tools, truncated=truncated, starts_in_reasoning=inside)
    kept = _squash((reply.content or "") + (reply.reasoning or ""))
    original = _squash(text)
    assert not kept - original  # nothing invented
    if not reply.tool_calls:
        # Only markers (and gpt-oss message headers, which hold at most the header cap) are dropped.
        marker_chars = sum(len(m) * text.count(m) for m in _MARKERS)
        marker_chars += len("all") * text.count(">>>all")  # Functionary v3.2's recipient "all" is format
        headers = text.count("<|start|>") + text.count("<|channel|>") + text.count("to=functions.")
        assert sum((original - kept).values()) <= marker_chars + headers * HARMONY_MAX_HEADER
    for call in reply.tool_calls:
        assert call.name in tools and isinstance(json.loads(call.arguments), dict)
