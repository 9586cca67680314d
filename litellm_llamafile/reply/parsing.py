"""Model text -> reasoning, content and OpenAI tool calls.

Models with no function-calling API write calls as text: in their family's native format (a marked
block: `<tool_call>…</tool_call>`, `[TOOL_CALLS]…`, `<|python_tag|>…`, … see families.py), or as bare
JSON objects and arrays, ```json fences, and pythonic `[f(a=1)]` lists, with prose around them; reasoning
models think in `<think>…</think>` (or `[THINK]`, gpt-oss's analysis channel, Kimi K3's think section)
first.

`ReplyScanner` does it in one left-to-right pass that can be fed in pieces, in two stages:
1. a marker pass cuts the text into prose, reasoning, harmony headers and family blocks (one regex search
   over every family's markers at once; a partial marker at the end of a piece is held back, never
   more); each family block is read by its family's reader (families.py) as it arrives, which announces
   a call once it is certain and streams its arguments (reply_parts.py keeps them);
2. prose goes through `JsonScanner` (json_scanner.py), which finds bare/fenced JSON and pythonic calls.
The streaming path and the one-shot `parse_tool_calls` run the same code and read content, reasoning and
calls through the same takes, so they agree for any chunking.

A JSON call is read as a block from its first character, so its arguments stream too, where it is known
to be a call attempt: anywhere at the top level of a forced reply (`forced`: the constraint makes it one
JSON call or a list of them, maybe after a thought), and at the start of an `auto` reply (Llama 3.x's
native format). Elsewhere JSON calls in prose are held until they close, since only then are they known
to be calls.

Guarantees: linear time (each character is looked at a bounded number of times, every block is read
once, no string is rebuilt per piece), bounded nesting, and no exception escapes for any input text.
A call is a call only once closed: one still open at the end of the reply is given back as content.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .call_shapes import as_arguments, as_call, calls_in_json
from .families import (
    CALLS_END_THINKING,
    GPT_OSS,
    HARMONY_OPENERS,
    HARMONY_REASONING_CLOSES,
    REASONING,
    harmony_kind,
    harmony_target,
)
from .json_families import HarmonyReader, JsonBlockReader
from .json_scanner import MAX_DEPTH
from .marker_modes import BLOCKS, THINK_CLOSES, EchoedOpener, HarmonyHeader, ReasoningMode, TextMode, find
from .offered import Offered
from .pythonic_reader import PythonicReader
from .readers import Reader
from .reply_parts import CallDelta, ReplyParts, call_id

__all__ = [
    "MAX_DEPTH",
    "CallDelta",
    "Offered",
    "ParsedReply",
    "ReplyScanner",
    "ToolCall",
    "as_arguments",
    "as_call",
    "broken_call_reason",
    "call_id",
    "calls_in_json",
    "parse_tool_calls",
    "reply_from_scanner",
    "tool_names",
]

TOOL_CALLS_MARKER = "[TOOL_CALLS]"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One parsed call; `arguments` is a JSON object serialized as a string, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """A model reply split into prose (`content`, None when empty), tool calls, and the reasoning the
    model wrote before answering (None when there was none)."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None


def tool_names(tools: Iterable[Any] | None) -> frozenset[str]:
    """Names of offered tools, from OpenAI tool dicts or plain strings."""
    return Offered.of(tools).names


class _BlockSink(ReplyParts):
    """What the family readers report to (readers.Sink): calls into ReplyParts, and the text of a block that
    was not a call back to where it came from."""

    def __init__(self, offered: Offered) -> None:
        super().__init__(offered.names)
        self.offered = offered
        self._reader: Reader | None = None  # the block being read
        self._truncated = False
        self._block_reasoning: tuple[str, ...] | None = None  # the think closers a block interrupted
        self._back_to_reasoning: tuple[str, ...] | None = None  # a block gave its text back to them
        self._unread: str | None = None  # a bare value that was no call, to read again as prose
        self._first_read = False  # the block's reader has not read yet

    def _start_block(self, reader: Reader) -> None:
        reader.truncated = self._truncated
        self._reader = reader
        self._first_read = True
        self._mode = "block"

    def give_back(self, text: str, *, cut: bool) -> None:
        """Text of a block that was not a (closed) call: reasoning again when the block interrupted a
        think block and made no call; else content, never searched for bare calls (the family's reader
        read it, and with its markers stripped it could only mislead), unless it was bare JSON. A call the
        block closed ended the think block, so what follows it is content."""
        self.drop_open_calls()
        if self._block_reasoning is not None and self._reader is not None and self._reader.calls == 0:
            self._add_reasoning(text)
            self._back_to_reasoning = self._block_reasoning
        elif self._reader is not None and self._reader.scan_given_back and not cut:
            self._unread = text  # read again as prose (see ReplyScanner._read_block)
        else:
            self._to_content_unscanned(text, cut=cut)


class ReplyScanner(_BlockSink):
    """Incremental parser of one reply: `feed` text as it arrives, `finish` at the end, and take only what
    is new with `take_content` / `take_reasoning` / `take_call_deltas`. It is the marker pass (modes in
    marker_modes.py) and the family readers' sink; `ReplyParts` keeps what they found.

    `starts_in_reasoning`: the prompt opened a think block. `reply_prefix`: an opener the prompt ended
    with (Functionary's `>>>`). `opener_echoed`: a constrained reply, whose leading think opener is the
    prompt's, echoed by llama-server (`reasoning_format: none`), and dropped. `forced`: a constrained call."""

    def __init__(
        self,
        tools: Iterable[Any] | Offered | None,
        *,
        starts_in_reasoning: bool = False,
        reply_prefix: str = "",
        opener_echoed: bool = False,
        forced: bool = False,
    ) -> None:
        super().__init__(Offered.of(tools))
        self._echo = EchoedOpener() if opener_echoed else None
        self._pending = ""  # text the marker pass has not classified yet
        self._mode = "text"  # text | reasoning | header | block
        self._text = TextMode(self._to_json, self.offered, forced=forced)
        self._reasoning = ReasoningMode(self._add_reasoning, (), calls=False)
        self._header = HarmonyHeader("")
        self.finished = False
        if starts_in_reasoning:
            self._enter_reasoning(THINK_CLOSES, calls=True)
        if reply_prefix:
            self.feed(reply_prefix)
            if self._reader is not None:
                self._reader.forget_opener()  # the prompt wrote it: never content

    def feed(self, chunk: str) -> None:
        if self._echo is not None and self._echo.lead is not None and chunk:
            chunk = self._echo.past(chunk, final=False)
        if chunk:
            self._pending += chunk  # _pending stays short: a held marker prefix, a header, a block tail
            self._process(final=False)

    def finish(self, *, truncated: bool = False) -> None:
        """End of reply; `truncated` (finish_reason length): a value that might go on is cut off."""
        if self.finished:
            return
        self._truncated = truncated
        if self._reader is not None:
            self._reader.truncated = truncated
        if self._echo is not None and self._echo.lead is not None:
            self._pending += self._echo.past("", final=True)
        self._process(final=True)
        self.drop_open_calls()
        self._json.finish(truncated=truncated)
        self._drain()
        self.finished = True

    # -- the marker pass --------------------------------------------------------------------------

    def _process(self, *, final: bool) -> None:
        # `at` walks through _pending; the string is cut once per call, never per marker, so a reply
        # full of markers costs linear time in one piece too.
        pending = self._pending
        at, more = 0, True
        while more:
            if self._mode == "block":
                pending, at = self._read_block(pending, at, final)
                more = self._reader is None
            elif self._mode == "text":
                at, more, found = self._text.step(pending, at, final)
                if found:
                    self._opened(found)
            elif self._mode == "reasoning":
                at, more, found = self._reasoning.step(pending, at, final)
                if found:
                    self._end_reasoning(found)
            else:
                at, more, header, keep = self._header.step(pending, at, final)
                self._to_json(keep)
                if header is not None:
                    self._on_header(header)
        self._pending = pending[at:]

    def _read_block(self, pending: str, at: int, final: bool) -> tuple[str, int]:
        """The block reads on. One a think block's text opened ends at that think block's closer as at the
        end of the reply: a closer after a call opener in reasoning that was no call still ends the
        reasoning. A bare JSON or pythonic value read as a call that was none is read again as prose
        (its first bracket not tried again), so what it held is the same as if it had not been tried."""
        reader = self._reader
        assert reader is not None
        end, closed = len(pending), final
        if self._block_reasoning is not None:
            m, stop = find(self._reasoning.markers_of_closers, pending, at, final)
            end, closed = (m.start(), True) if m is not None else (stop, final)
        start, first, self._first_read = at, self._first_read, False
        at = reader.read(pending[:end] if end < len(pending) else pending, at, closed)
        if reader.done:
            self._end_block()
            # A bare value that ended having read nothing: its bracket is prose, not tried again.
            self._text.declined = reader.scan_given_back and first and at == start
            if self._unread is not None:
                pending, at = self._unread + pending[at:], 0
                self._unread, self._text.declined = None, True
        return pending, at

    def _end_reasoning(self, found: str) -> None:
        """A closer ends the think block; a call's opener the reference allows inside it opens the call."""
        if found in self._reasoning.closes:
            self._mode = "text"
        else:
            self._block_reasoning = self._reasoning.closes
            self._start_block(BLOCKS[found].open_block(self, self.offered, found))

    def _enter_reasoning(self, closes: tuple[str, ...], *, calls: bool) -> None:
        self._mode = "reasoning"
        self._reasoning = ReasoningMode(self._add_reasoning, closes, calls=calls)

    def _opened(self, found: str) -> None:
        """What the text mode found: a marker, or an implicit JSON or pythonic call at the position."""
        if found in ("json", "pythonic"):
            kind = JsonBlockReader if found == "json" else PythonicReader
            reader = kind(self, self.offered, "", weak=True, strip=())
            reader.scan_given_back = True  # not a call: the JSON scanner reads it as prose
            self._start_block(reader)
        elif found in REASONING:
            self._enter_reasoning(REASONING[found], calls=found in CALLS_END_THINKING)
        elif found in HARMONY_OPENERS:
            self._mode = "header"
            self._header = HarmonyHeader(found)
        elif found in BLOCKS:
            self._start_block(BLOCKS[found].open_block(self, self.offered, found))
        # else a dropped marker: nothing to do, the text goes on

    def _end_block(self) -> None:
        self._reader = self._block_reasoning = None
        closes, self._back_to_reasoning = self._back_to_reasoning, None
        if closes is None:
            self._mode = "text"
        else:
            self._enter_reasoning(closes, calls=True)

    def _on_header(self, header: str) -> None:
        kind = harmony_kind(header) if header else "content"
        if kind == "reasoning":
            self._enter_reasoning(HARMONY_REASONING_CLOSES, calls=False)
        elif kind == "call":
            name = harmony_target(header)
            self._start_block(
                HarmonyReader(self, self.offered, "", weak=False, strip=GPT_OSS.closes, name=name)
            )
        else:
            self._mode = "text"


def reply_from_scanner(scanner: ReplyScanner, *, id_seed: str = "") -> ParsedReply:
    """The final split of a finished scan: content and reasoning stripped, None when empty."""
    content = scanner.full_content().strip()
    reasoning = scanner.full_reasoning().strip()
    calls = tuple(
        ToolCall(id=call_id(id_seed, index), name=record.name, arguments=record.arguments)
        for index, record in enumerate(scanner.records)
        if record.state == "closed"
    )
    return ParsedReply(content=content or None, tool_calls=calls, reasoning=reasoning or None)


def parse_tool_calls(
    text: str,
    tools: Iterable[Any] | Offered | None,
    *,
    id_seed: str = "",
    truncated: bool = False,
    starts_in_reasoning: bool = False,
    reply_prefix: str = "",
    opener_echoed: bool = False,
    forced: bool = False,
) -> ParsedReply:
    """Split a model reply into reasoning, prose and calls to the offered `tools`: tool names, OpenAI
    tool dicts (whose parameter schemas type the values of the tag formats: a `string` parameter keeps
    its exact text), or an `Offered`.

    Accepts every family format in families.FAMILIES, bare JSON objects and arrays, ```json fences,
    pythonic `[f(a=1)]` lists, and the key spellings name/arguments, function/parameters and OpenAI's
    {"type": "function", "function": {...}}. JSON that names no offered tool stays prose; a call not
    closed by the end of the reply is never a call, whatever `truncated` says (`truncated` only decides
    whether a value that might go on was cut off). Never raises on any `text`; runs in time linear in
    its length.
    """
    scanner = ReplyScanner(
        tools,
        starts_in_reasoning=starts_in_reasoning,
        reply_prefix=reply_prefix,
        opener_echoed=opener_echoed,
        forced=forced,
    )
    scanner.feed(text)
    scanner.finish(truncated=truncated)
    return reply_from_scanner(scanner, id_seed=id_seed)


def split_reasoning(
    text: str, *, starts_in_reasoning: bool = False, opener_echoed: bool = False
) -> ParsedReply:
    """Reasoning and content of a reply when no tools were offered (markers removed, nothing parsed)."""
    return parse_tool_calls(text, (), starts_in_reasoning=starts_in_reasoning, opener_echoed=opener_echoed)


def broken_call_reason(text: str, tools: Iterable[Any] | None) -> str | None:
    """Why `text` looks like an attempted tool call that could not be used, or None when it does not
    look like one (plain prose). Used to show the model its mistake in the opt-in repair retry."""
    names = tool_names(tools)
    if not names or parse_tool_calls(text, names).tool_calls:
        return None
    attempted = TOOL_CALLS_MARKER in text or '"name"' in text or any(json.dumps(n) in text for n in names)
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if not attempted or start < 0:
        return None
    try:
        json.JSONDecoder().raw_decode(text[start:])
    except ValueError as error:
        return f"the JSON is invalid ({error})"
    except RecursionError:
        return "the JSON is nested too deeply"
    offered = ", ".join(sorted(names))
    return f'the JSON is not {{"name": <one of: {offered}>, "arguments": {{...}}}}'
