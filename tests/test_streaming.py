"""Stream assembly: for every tool-call reply recorded from the real server, re-chunking the reply at
every split point streams into exactly the message the non-streamed parse gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from litellm_llamafile.prompt.signatures import SIGNATURE_HEADER
from litellm_llamafile.reply.parsing import parse_tool_calls, tool_names
from litellm_llamafile.reply.streaming import StreamAssembler, Trimmer, final_finish_reason

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"


def _recorded_tool_replies() -> list[tuple[str, str, frozenset[str], str]]:
    """(cassette, reply text, offered tool names, server finish_reason) for every recorded chat
    request that offered tools, streamed or not."""
    found: list[tuple[str, str, frozenset[str], str]] = []
    for path in sorted(CASSETTES.rglob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            request, response = interaction["request"], interaction["response"]
            if not request["uri"].endswith("/v1/chat/completions"):
                continue
            body = json.loads(request["body"])
            if SIGNATURE_HEADER not in json.dumps(body["messages"]):
                continue
            names = _offered_names(body["messages"])
            text, reason = _reply_text(response["body"]["string"])
            if text is not None:
                found.append((path.name, text, names, reason))
    return found


def _offered_names(messages: list[dict[str, Any]]) -> frozenset[str]:
    """The tool names in the adapter's instructions: one signature line per tool after its header."""
    names: set[str] = set()
    for message in messages:
        lines = str(message.get("content") or "").splitlines()
        if SIGNATURE_HEADER not in lines:
            continue
        for line in lines[lines.index(SIGNATURE_HEADER) + 1 :]:
            name, paren, _ = line.partition("(")
            if not paren or not name.isidentifier():
                break
            names.add(name)
    return frozenset(names)


def _reply_text(raw: str) -> tuple[str | None, str]:
    if raw.lstrip().startswith("{"):
        data = json.loads(raw)
        if "choices" not in data:
            return None, ""
        choice = data["choices"][0]
        return choice["message"]["content"] or "", choice["finish_reason"]
    text, reason = "", ""
    for line in raw.splitlines():
        if line.startswith("data: ") and line[6:].strip() != "[DONE]":
            event = json.loads(line[6:])
            for choice in event.get("choices") or []:
                text += (choice.get("delta") or {}).get("content") or ""
                reason = choice.get("finish_reason") or reason
    return text, reason


RECORDED = _recorded_tool_replies()


def _stream(text: str, names: frozenset[str], cuts: list[int], reason: str) -> tuple[str, list[Any], str]:
    assembler = StreamAssembler(names, parse_tools=True)
    content = ""
    previous = 0
    for cut in [*cuts, len(text)]:
        content += assembler.feed(text[previous:cut])
        previous = cut
    end = assembler.finish(reason, id_seed="chatcmpl-x")
    content += end.content
    return content, [(c.id, c.name, c.arguments) for c in end.tool_calls], end.finish_reason


def test_cassettes_hold_tool_call_replies_to_check() -> None:
    assert len(RECORDED) >= 4
    assert any(parse_tool_calls(text, names).tool_calls for _, text, names, _ in RECORDED)


@pytest.mark.parametrize(("cassette", "text", "names", "reason"), RECORDED, ids=[r[0][:60] for r in RECORDED])
def test_every_split_point_streams_into_the_non_streamed_message(
    cassette: str, text: str, names: frozenset[str], reason: str
) -> None:
    whole = parse_tool_calls(text, names, id_seed="chatcmpl-x", truncated=reason == "length")
    expected = (
        whole.content or "",
        [(c.id, c.name, c.arguments) for c in whole.tool_calls],
        final_finish_reason(reason, bool(whole.tool_calls)),
    )
    for cut in range(len(text) + 1):
        assert _stream(text, names, [cut], reason) == expected, cut
    assert _stream(text, names, list(range(1, len(text))), reason) == expected  # one character at a time


def test_no_marker_or_fence_is_ever_emitted_as_content() -> None:
    text = 'Let me search.\n```json\n{"name": "web_search", "arguments": {"query": "x"}}\n```'
    assembler = StreamAssembler(frozenset({"web_search"}), parse_tools=True)
    emitted = [assembler.feed(ch) for ch in text]
    end = assembler.finish("stop")
    streamed = "".join(emitted) + end.content
    assert streamed == "Let me search."
    assert "```" not in streamed and [c.name for c in end.tool_calls] == ["web_search"]
    assert end.finish_reason == "tool_calls"


def test_prose_streams_before_the_reply_ends() -> None:
    assembler = StreamAssembler(frozenset({"web_search"}), parse_tools=True)
    assert assembler.feed("Roman dodecahedrons are ") == "Roman dodecahedrons are"
    assert assembler.feed("bronze. ") == " bronze."  # the held space comes out with the next word


def test_without_tools_text_passes_through_untouched() -> None:
    assembler = StreamAssembler(frozenset(), parse_tools=False)
    assert assembler.feed('  {"name": "x"} ') == '  {"name": "x"} '
    assert assembler.finish(None).finish_reason == "stop"


def test_a_cut_off_stream_is_never_a_finished_call() -> None:
    assembler = StreamAssembler(frozenset({"web_search"}), parse_tools=True)
    assembler.feed('{"name": "web_search", "arguments": {"query": "rom')
    end = assembler.finish("length")
    assert end.tool_calls == () and end.finish_reason == "length"
    assert end.content.startswith('{"name"')  # nothing lost


def test_tool_names_reads_openai_tools_and_plain_names() -> None:
    assert tool_names([{"type": "function", "function": {"name": "a"}}, "b", {"name": "c"}]) == {
        "a",
        "b",
        "c",
    }


class _Counted(str):
    """A delta that counts the characters copied whenever it is concatenated, to see how the whitespace
    buffer grows without timing it."""

    copied = 0

    def __add__(self, other: str) -> _Counted:
        _Counted.copied += len(self) + len(other)
        return _Counted(str.__add__(self, other))

    def __radd__(self, other: str) -> _Counted:
        _Counted.copied += len(self) + len(other)
        return _Counted(str.__add__(other, self))


def test_whitespace_only_deltas_are_held_without_copying_them_again_and_again() -> None:
    """Issue 24: 400k one-space deltas took 3.1 s, each one copying all the held whitespace before it."""
    trimmer = Trimmer()
    assert trimmer("Hello", final=False) == "Hello"
    spaces = 20_000
    _Counted.copied = 0
    for _ in range(spaces):
        assert trimmer(_Counted(" "), final=False) == ""
    assert trimmer(_Counted("world "), final=False) == " " * spaces + "world"
    assert trimmer("", final=True) == ""  # trailing whitespace of the whole text is dropped
    assert _Counted.copied <= 2 * spaces  # a quadratic buffer copies about spaces**2 / 2
