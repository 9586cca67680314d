"""Reasoning (`<think>`, `[THINK]`, gpt-oss analysis, Command-R7B, Gemma 4) goes to its own field: never
content, never parsed for calls, available in a stream before the content that follows it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_llamafile.parsing import parse_tool_calls, split_reasoning
from litellm_llamafile.streaming import StreamAssembler

from .support.family_cases import REASONING_CASES


@pytest.mark.parametrize(("text", "inside", "reasoning", "content"), REASONING_CASES)
def test_reasoning_is_split_from_content(text: str, inside: bool, reasoning: str, content: str) -> None:
    reply = split_reasoning(text, starts_in_reasoning=inside)
    assert (reply.reasoning or "", reply.content or "") == (reasoning, content)


def test_a_call_written_while_thinking_is_not_a_call() -> None:
    text = '<think>maybe {"name": "search", "arguments": {}}</think>{"name": "search", "arguments": {"q": 1}}'
    reply = parse_tool_calls(text, ["search"])
    assert [c.arguments for c in reply.tool_calls] == ['{"q": 1}']
    assert reply.reasoning == 'maybe {"name": "search", "arguments": {}}'
    assert reply.content is None


def test_reply_that_starts_inside_the_think_block_the_prompt_opened() -> None:
    text = 'The user wants the weather.</think><tool_call>{"name": "search", "arguments": {}}</tool_call>'
    reply = parse_tool_calls(text, ["search"], starts_in_reasoning=True)
    assert reply.reasoning == "The user wants the weather."
    assert [c.name for c in reply.tool_calls] == ["search"] and reply.content is None


def test_stream_gives_reasoning_before_the_content_after_it() -> None:
    assembler = StreamAssembler(frozenset(), parse_tools=False, parse_reasoning=True)
    order: list[tuple[str, str]] = []
    for delta in ["<th", "ink>Let me ", "think.</thi", "nk>The answer", " is 4."]:
        content = assembler.feed(delta)
        reasoning = assembler.take_reasoning()
        order += [("reasoning", reasoning)] if reasoning else []
        order += [("content", content)] if content else []
    end = assembler.finish("stop")
    assert "".join(t for k, t in order if k == "reasoning") + end.reasoning == "Let me think."
    assert order[0] == ("reasoning", "Let me")  # streamed before the think block even closed
    assert max(i for i, (k, _) in enumerate(order) if k == "reasoning") < min(
        i for i, (k, _) in enumerate(order) if k == "content"
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REASONING_CASES), st.lists(st.integers(0, 200), max_size=10))
def test_streamed_reasoning_equals_the_one_shot_split(
    case: tuple[str, bool, str, str], cuts: list[int]
) -> None:
    text, inside, reasoning, content = case
    assembler = StreamAssembler(
        frozenset(), parse_tools=False, parse_reasoning=True, starts_in_reasoning=inside
    )
    got_content = got_reasoning = ""
    previous = 0
    for cut in [*sorted(min(c, len(text)) for c in cuts), len(text)]:
        got_content += assembler.feed(text[previous:cut])
        got_reasoning += assembler.take_reasoning()
        previous = cut
    end = assembler.finish("stop")
    assert (got_reasoning + end.reasoning, got_content + end.content) == (reasoning, content)
