"""Every current family's native tool-call format, read the way each reference writes it (the case corpus in
tests/support/families): the right calls, content and reasoning; the same through a stream split at any
point; and two safety properties in every case: a call cut off is never a call, and a `string` parameter
comes back as the exact text written."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_llamafile.reply.families import DROPPED_MARKERS, FAMILIES, REASONING, expected_reply
from litellm_llamafile.reply.offered import Offered
from litellm_llamafile.reply.parsing import ParsedReply, parse_tool_calls
from litellm_llamafile.reply.streaming import StreamAssembler

from .support.families import FAMILY_MODULES, TOOLS, Case, all_cases
from .support.families.common import STRING_PARAMETERS, Format, given_back

CASES = all_cases()
OFFERED = Offered.of(TOOLS)  # the tools with their schemas, read once
IDS = [c.id for c in CASES]
WITH_CALLS = [c for c in CASES if c.calls]


def parse(case: Case, text: str | None = None, *, truncated: bool | None = None) -> ParsedReply:
    return parse_tool_calls(
        case.text if text is None else text,
        OFFERED,
        id_seed="s",
        truncated=case.truncated if truncated is None else truncated,
        starts_in_reasoning=case.starts_in_reasoning,
        reply_prefix=case.reply_prefix,
        forced=case.forced,
    )


def decoded(reply: ParsedReply) -> list[tuple[str, Any]]:
    return [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]


def test_every_family_has_at_least_25_cases() -> None:
    counts = Counter(c.family for c in CASES)
    assert min(counts.values()) >= 25, counts
    assert len(counts) == sum(len(_formats(m)) for m in FAMILY_MODULES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_reply_parses_into_its_calls_content_and_reasoning(case: Case) -> None:
    reply = parse(case)
    assert decoded(reply) == [(n, a) for n, a in case.calls]
    assert reply.reasoning == case.reasoning
    piece = given_back(case.content)
    if piece is not None:  # text that is not a call stays content, minus the family's markers
        assert piece in (reply.content or "")
    else:
        assert reply.content == case.content
    for text in (reply.content or "", reply.reasoning or ""):
        assert not [m for m in case.markers if m in text]


def _streamed(case: Case, cuts: list[int]) -> tuple[Any, ...]:
    """The message a client assembles from the stream, split at `cuts`: content, reasoning, the calls whose
    arguments are valid JSON, finish_reason; and the announced calls whose arguments never closed."""
    assembler = StreamAssembler(
        OFFERED,
        parse_tools=True,
        starts_in_reasoning=case.starts_in_reasoning,
        reply_prefix=case.reply_prefix,
        forced=case.forced,
    )
    content, reasoning, calls = "", "", {}
    previous = 0
    for cut in [*cuts, len(case.text)]:
        content += assembler.feed(case.text[previous:cut])
        reasoning += assembler.take_reasoning()
        for delta in assembler.take_calls("s"):
            calls.setdefault(delta.index, [delta.id, delta.name, ""])[2] += delta.arguments
        previous = cut
    end = assembler.finish("length" if case.truncated else "stop", id_seed="s")
    for delta in end.call_deltas:
        calls.setdefault(delta.index, [delta.id, delta.name, ""])[2] += delta.arguments
    whole = [tuple(c) for c in calls.values() if _is_json(c[2])]
    broken = [tuple(c) for c in calls.values() if not _is_json(c[2])]
    return content + end.content, reasoning + end.reasoning, whole, end.finish_reason, broken


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _whole(case: Case) -> tuple[Any, ...]:
    reply = parse(case)
    calls = [(c.id, c.name, c.arguments) for c in reply.tool_calls]
    finish = "length" if case.truncated else ("tool_calls" if calls else "stop")
    return reply.content or "", reply.reasoning or "", calls, finish


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_streamed_at_every_split_point_it_is_the_same_message(case: Case) -> None:
    whole = _whole(case)
    for cut in range(len(case.text) + 1):
        streamed = _streamed(case, [cut])
        assert streamed[:4] == whole, cut
    one_by_one = _streamed(case, list(range(1, len(case.text))))
    assert one_by_one[:4] == whole
    # A call announced and then cut off never has arguments a client could run.
    assert all(not _is_json(args) for _, _, args in one_by_one[4])


@pytest.mark.parametrize("case", WITH_CALLS, ids=[c.id for c in WITH_CALLS])
@pytest.mark.parametrize("truncated", [True, False], ids=["length", "stop"])
def test_a_cut_off_call_is_never_a_call(case: Case, truncated: bool) -> None:
    """Cut anywhere: the calls found are calls the whole reply makes, each whole; never a cut one. A reply
    that stopped right after one of the family's ambiguous closing tags closed its call (GLM)."""
    whole = [(n, a) for n, a in case.calls]
    for cut in range(len(case.text)):
        prefix = case.text[:cut]
        found = decoded(parse(case, prefix, truncated=truncated))
        if not truncated and prefix.rstrip().endswith(case.ambiguous_ends or ("\x00",)):
            continue
        assert found == whole[: len(found)], cut


@pytest.mark.parametrize("case", WITH_CALLS, ids=[c.id for c in WITH_CALLS])
def test_a_string_parameter_comes_back_as_the_exact_text(case: Case) -> None:
    for (name, expected), call in zip(case.calls, parse(case).tool_calls, strict=True):
        arguments = json.loads(call.arguments)
        for key in STRING_PARAMETERS[name] & set(expected):
            value = arguments[key]
            assert isinstance(value, str) and value == expected[key], (name, key)


def _formats(module: Any) -> list[Format]:
    return [v for v in vars(module).values() if isinstance(v, Format)]


FORMATS = [f for m in FAMILY_MODULES for f in _formats(m)]


@pytest.mark.parametrize(
    "fmt", [f for f in FORMATS if f.thinking_prompt or f.disabled_prompt], ids=lambda f: f.family
)
def test_the_generation_prompt_says_where_the_reply_starts(fmt: Format) -> None:
    if fmt.thinking_prompt:
        assert expected_reply(None, "...<|assistant|>" + fmt.thinking_prompt).starts_in_reasoning
    if fmt.disabled_prompt:
        assert not expected_reply(None, "...<|assistant|>" + fmt.disabled_prompt).starts_in_reasoning


LONG = [c for c in CASES if c.name == "long_value"]  # every format streams a call that opens the reply


@pytest.mark.parametrize("case", LONG, ids=[c.id for c in LONG])
def test_a_long_call_streams_its_arguments_as_they_are_written(case: Case) -> None:
    """Fed about a token (3 characters) at a time: the call is announced within a few tokens of its name
    (past the family's markup between the name and the arguments), and its long value streams: no more
    than a few tokens pass between two argument deltas while it is written."""
    assembler = StreamAssembler(OFFERED, parse_tools=True, forced=case.forced)
    announced, deltas = -1, []
    for at in range(0, len(case.text), 3):
        assembler.feed(case.text[at : at + 3])
        for delta in assembler.take_calls("s"):
            if delta.name is not None:
                announced = at
            if delta.arguments:
                deltas.append(at)
    name_end = case.text.index("write_file") + len("write_file")
    assert 0 <= announced <= name_end + 30
    start, end = case.text.index("line 0"), case.text.index("line 39")
    inside = [at for at in deltas if start <= at <= end]
    assert inside[0] <= start + 6
    assert max(b - a for a, b in itertools.pairwise(inside)) <= 12


# Issue 26's reproductions, each a corpus case (run by every test above): the forms read wrong before.
REPRODUCTIONS = {
    "DSML V3.2 blocks": "deepseek_v3_2:single",
    "DSML V4 / V4.1 blocks": "deepseek_v4:parallel",
    "DSML self-closing invoke": "deepseek_v3_2:self_closing_invoke",
    "DSML invoke with no parameters": "deepseek_v3_2:invoke_without_parameters",
    "Kimi K3 calls": "kimi_k3:single",
    "Kimi K3 section markers leaking into content": "kimi_k3:issue_repro_sections_leak",
    "string account_id 123456789012345678901, label 3, query {'a': 1}": "qwen3_5:numeric_looking_strings",
    "boolean written True": "qwen3_5:python_spelling_typed",
    "GLM boolean written True": "glm4_7:python_spelled_boolean",
    "a cut-off Qwen3-Coder write_file is no call": "qwen3_5:issue_repro_cut_at_stop",
    "markers inside a Hermes argument": "qwen3:markers_inside_values",
    "markers inside a Qwen3 XML value": "qwen3_5:markers_inside_values",
    "markers inside a GLM value": "glm4_7:markers_inside_values",
    "markers inside a Kimi K2 argument": "kimi_k2:markers_inside_values",
    "markers inside a Gemma 4 string": "gemma4:markers_inside_values",
    "markers inside a DeepSeek V3.1 argument": "deepseek_v3_1:markers_inside_values",
    "markers inside a Llama 3 argument": "llama3:markers_inside_values",
    "markers inside a gpt-oss argument": "gpt_oss:markers_inside_values",
    "gpt-oss to=functions.x<|constrain|>json in the role header": "gpt_oss:role_header_constrain",
    "gpt-oss reply with no analysis channel": "gpt_oss:no_analysis_channel",
    "Llama 4 escaped quote": "llama4:escaped_quote",
    "GLM 4.7 thinking disabled": "glm4_7:thinking_disabled_echoed",
    "GLM whitespace kept in a value": "glm4_7:whitespace_kept",
    "GLM three calls to one tool": "glm4_7:parallel_same_tool",
    "GLM missing last </arg_value>": "glm4_7:missing_last_arg_value",
    "Qwen3.5 call inside the think block": "qwen3_5:call_inside_reasoning",
    "Qwen3.5 value with leading indentation": "qwen3_5:code_keeps_indentation",
    "Qwen3.5 value with a trailing newline": "qwen3_5:trailing_newline_kept",
    "Kimi K2 noise between markers": "kimi_k2:noise_between_markers",
    "Qwen3 thinking-disabled prompt": "qwen3:thinking_disabled_echoed",
    "DeepSeek thinking-disabled prompt": "deepseek_v3_2:thinking_disabled_echoed",
}


def test_every_reproduction_of_the_issue_is_a_case_of_the_corpus() -> None:
    ids = {c.id for c in CASES}
    assert not [what for what, case in REPRODUCTIONS.items() if case not in ids]


_NOISE = sorted(
    {m for f in FAMILIES for m in (*f.openers, *f.closes, *f.strip)}
    | set(REASONING)
    | {c for closes in REASONING.values() for c in closes}
    | set(DROPPED_MARKERS)
    | {"<|start|>", "<|message|>", " to=functions.search ", "{", "}", "[", "]", '"', "'", "\\", "\n", "`"}
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_reply_with_stray_markers_streams_into_the_same_message_for_any_chunking(
    data: st.DataObject,
) -> None:
    """Any case with family markers and JSON punctuation dropped in anywhere, under any flags, split
    anywhere: the stream is the one-shot reply (the parser's paths must not depend on the pieces)."""
    case = data.draw(st.sampled_from(CASES), label="case")
    text = case.text
    for _ in range(data.draw(st.integers(0, 3), label="noises")):
        at = data.draw(st.integers(0, len(text)), label="at")
        text = text[:at] + data.draw(st.sampled_from(_NOISE), label="noise") + text[at:]
    noisy = replace(
        case,
        text=text,
        truncated=data.draw(st.booleans(), label="truncated"),
        forced=data.draw(st.booleans(), label="forced"),
        starts_in_reasoning=data.draw(st.booleans(), label="in reasoning"),
    )
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=6), label="cuts")))
    assert _streamed(noisy, cuts)[:4] == _whole(noisy)
