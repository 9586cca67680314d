# ruff: noqa: RUF001 - DeepSeek's special tokens are spelled with fullwidth bars
"""Every model family's native tool-call format becomes OpenAI tool calls: single, parallel, no
arguments, nested and unicode arguments, prose before the call; markers never reach content; unknown
tools and cut-off replies are never calls; streaming equals the one-shot parse for any chunking."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_llamafile.reply.families import DROPPED_MARKERS, FAMILIES, REASONING, expected_reply
from litellm_llamafile.reply.parsing import ParsedReply, parse_tool_calls
from litellm_llamafile.reply.streaming import StreamAssembler

from .support.family_cases import CASES, OFFERED, WRITERS, Calls, Writer

IDS = [w.family for w in WRITERS]


def parse(writer: Writer, text: str, **kwargs: object) -> ParsedReply:
    return parse_tool_calls(text, OFFERED, reply_prefix=writer.reply_prefix, id_seed="s", **kwargs)  # type: ignore[arg-type]


def decoded(reply: ParsedReply) -> Calls:
    return [(c.name, json.loads(c.arguments)) for c in reply.tool_calls]


def assert_no_marker(writer: Writer, content: str | None) -> None:
    for marker in writer.markers:
        assert marker not in (content or ""), marker


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
@pytest.mark.parametrize("case", list(CASES))
def test_family_call_becomes_the_same_openai_call(writer: Writer, case: str) -> None:
    reply = parse(writer, writer.render(CASES[case]))
    assert decoded(reply) == CASES[case]
    assert reply.content is None
    assert len({c.id for c in reply.tool_calls}) == len(reply.tool_calls)


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_prose_before_the_call_is_content_without_markers(writer: Writer) -> None:
    reply = parse(writer, writer.prose_before + writer.render(CASES["single"]))
    assert decoded(reply) == CASES["single"]
    assert reply.content == "Let me check that for you."
    assert_no_marker(writer, reply.content)


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_a_call_to_a_tool_nobody_offered_stays_text(writer: Writer) -> None:
    reply = parse(writer, writer.render([("delete_everything", {"really": True})]))
    assert reply.tool_calls == ()
    assert "really" in (reply.content or "")  # the arguments stay visible as text


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
@pytest.mark.parametrize("truncated", [True, False])
def test_a_cut_off_call_is_never_a_call(writer: Writer, truncated: bool) -> None:
    """Cut anywhere, whatever finish_reason says: the calls found are calls the whole reply makes, whole
    (one closed before the cut stands), never a cut one."""
    for case in ("single", "parallel", "nested_unicode"):
        text = writer.render(CASES[case])
        for cut in range(1, len(text)):
            found = decoded(parse(writer, text[:cut], truncated=truncated))
            assert found == CASES[case][: len(found)], (case, cut)


def _stream(writer: Writer, text: str, cuts: list[int], reason: str) -> tuple[str, str, Calls, str]:
    assembler = StreamAssembler(frozenset(OFFERED), parse_tools=True, reply_prefix=writer.reply_prefix)
    content = reasoning = ""
    previous = 0
    for cut in [*sorted(cuts), len(text)]:
        content += assembler.feed(text[previous:cut])
        reasoning += assembler.take_reasoning()
        previous = cut
    end = assembler.finish(reason, id_seed="s")
    return (
        content + end.content,
        reasoning + end.reasoning,
        [(c.name, json.loads(c.arguments)) for c in end.tool_calls],
        end.finish_reason,
    )


def _whole(writer: Writer, text: str, reason: str) -> tuple[str, str, Calls, str]:
    reply = parse(writer, text, truncated=reason == "length")
    finish = "length" if reason == "length" else ("tool_calls" if reply.tool_calls else reason)
    return reply.content or "", reply.reasoning or "", decoded(reply), finish


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_streaming_equals_one_shot_for_any_chunking(data: st.DataObject) -> None:
    writer = data.draw(st.sampled_from(WRITERS), label="family")
    case = data.draw(st.sampled_from(list(CASES)), label="case")
    text = data.draw(st.sampled_from(["", "<think>plan it</think>", writer.prose_before]), label="before")
    text += writer.render(CASES[case]) + data.draw(st.sampled_from(["", "\nDone.", "  "]), label="after")
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12), label="cuts")
    reason = data.draw(st.sampled_from(["stop", "length"]), label="reason")
    assert _stream(writer, text, cuts, reason) == _whole(writer, text, reason)


@pytest.mark.parametrize("writer", WRITERS, ids=IDS)
def test_one_character_at_a_time_streams_into_the_one_shot_message(writer: Writer) -> None:
    text = writer.prose_before + writer.render(CASES["parallel"])
    assert _stream(writer, text, list(range(1, len(text))), "stop") == _whole(writer, text, "stop")


def test_every_table_marker_is_distinct_so_one_search_finds_them_all() -> None:
    """No opening marker contains another one later on: a single leftmost search stays correct when
    markers arrive split across deltas."""
    openers = {f.opens for f in FAMILIES} | set(REASONING) | set(DROPPED_MARKERS)
    for a in openers:
        for b in openers:
            if a != b:
                assert b not in a[1:], (a, b)


@pytest.mark.parametrize(
    ("template", "family"),
    [
        ("{{ '<tool_call>\\n' }}{{ tool_call | tojson }}{{ '\\n</tool_call>' }}", "hermes"),
        ("<tool_call>\\n<function={{ name }}>\\n<parameter={{ k }}>", "qwen3_coder"),
        ("<tool_call>{{ name }}<arg_key>{{ k }}</arg_key>", "glm"),
        ("{{- '<|python_tag|>' }}{{- '<|eom_id|>' }}", "llama3"),
        ("[AVAILABLE_TOOLS]{{ tools }}[/AVAILABLE_TOOLS] [TOOL_CALLS]", "mistral"),
        ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>", "deepseek"),
        ("<|start|>assistant<|channel|>final<|message|>", "gpt_oss"),
        ("<|tool_calls_section_begin|>", "kimi_k2"),
        ("{%- set dsml_token = '｜DSML｜' -%}{{ '<' + dsml_token + 'function_calls>' }}", "deepseek_v3_2"),
        ("{%- set dsml_token = '｜DSML｜' -%}{{ '<' + dsml_token + 'tool_calls>' }}", "deepseek_v4"),
        ("{{- '<|open|>' + tag -}}{{- '<|close|>' + tag + '<|sep|>' -}}", "kimi_k3"),
        ("{{ 'Hello' }}", None),
    ],
)
def test_template_says_which_family_to_expect(template: str, family: str | None) -> None:
    assert expected_reply(template).family == family


def test_template_or_prompt_says_the_reply_starts_inside_a_think_block() -> None:
    r1 = "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
    qwen3 = (
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
        "{%- if enable_thinking is defined and "
        "enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
    )
    assert expected_reply(r1).starts_in_reasoning
    assert not expected_reply(qwen3).starts_in_reasoning
    assert expected_reply(None, "<|im_start|>assistant\n<think>\n").starts_in_reasoning
    assert not expected_reply(None, "<|im_start|>assistant\n").starts_in_reasoning
    assert expected_reply(None, "<|start_header_id|>assistant<|end_header_id|>\n\n>>>").reply_prefix == ">>>"


def test_the_docs_table_of_families_is_the_one_the_code_has() -> None:
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("families_table", root / "scripts" / "families_table.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.families_table() in (root / "docs" / "families.md").read_text()
    assert "docs/families.md" in (root / "README.md").read_text()
