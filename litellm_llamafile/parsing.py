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
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .call_shapes import as_arguments, as_call, calls_in_json
from .families import (
    CALLS_END_THINKING,
    CALLS_IN_REASONING,
    DROPPED_MARKERS,
    GPT_OSS,
    HARMONY_MAX_HEADER,
    HARMONY_MESSAGE,
    HARMONY_OPENERS,
    HARMONY_REASONING_CLOSES,
    HARMONY_WEAK_OPENERS,
    REASONING,
    families_by_marker,
    harmony_kind,
    harmony_target,
)
from .json_families import HarmonyReader, JsonBlockReader
from .json_scanner import MAX_DEPTH
from .offered import Offered
from .pythonic_reader import PythonicReader
from .readers import Markers, Reader
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


# -- the markers each mode looks for ------------------------------------------------------------------

_BLOCKS = families_by_marker()
_THINK_CLOSES = tuple(
    sorted({c for closes in REASONING.values() for c in closes} | set(HARMONY_REASONING_CLOSES))
)


@lru_cache(maxsize=32)
def _markers(markers: tuple[str, ...]) -> tuple[Markers, dict[str, tuple[str, ...]]]:
    """A marker set, and for each marker the longer ones it starts (which may still arrive)."""
    extended = {m: tuple(x for x in markers if x != m and x.startswith(m)) for m in markers}
    return Markers(markers), extended


def _text_markers() -> tuple[Markers, dict[str, tuple[str, ...]]]:
    return _markers(tuple(dict.fromkeys((*_BLOCKS, *REASONING, *HARMONY_OPENERS, *DROPPED_MARKERS))))


_STRUCTURE = "{}[]\"'"
_STRING_END = {q: re.compile(r"[\\\n" + q + "]") for q in "\"'"}


@lru_cache(maxsize=4)
def _prose_pattern(markers: Markers) -> re.Pattern[str]:
    """The markers, then the characters that change the shape of prose (brackets, quotes): one search
    finds whichever comes first, markers winning where both start."""
    return re.compile(markers.pattern.pattern + "|[{}\\[\\]\"']")


class ProseShape:
    """Where the prose is in a bracketed structure (bare JSON, a pythonic list): inside a quoted string
    there, a marker is text, so a call written as bare JSON or Python can quote any family's markers.
    Quotes count only inside brackets (an apostrophe in prose is not a string), and a newline ends a
    string (a JSON or Python string never holds a raw one), so a stray bracket costs at most a line."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote = ""
        self.escaped = False

    def see(self, c: str) -> None:
        if c in "{[":
            self.depth += 1
        elif c in "}]":
            self.depth = max(self.depth - 1, 0)
        elif self.depth:
            self.quote = c

    def string(self, text: str, at: int, final: bool) -> int:
        """Where the quoted string from `at` stops: past its closing quote, or where the text ends (a
        backslash last waits for the character it escapes)."""
        pos = at
        if self.escaped:
            if pos >= len(text):
                return pos
            self.escaped = False
            pos += 1
        while True:
            m = _STRING_END[self.quote].search(text, pos)
            if m is None:
                return len(text)
            if m.group() == "\\":
                if m.end() >= len(text) and not final:
                    self.escaped = True
                    return m.end()
                pos = m.end() + 1
                continue
            self.quote = ""
            return m.end()


def _reasoning_markers(closes: tuple[str, ...], calls: bool) -> tuple[Markers, dict[str, tuple[str, ...]]]:
    return _markers(tuple(dict.fromkeys((*closes, *CALLS_IN_REASONING) if calls else closes)))


class ReplyScanner(ReplyParts):
    """Incremental parser of one reply: `feed` text as it arrives, `finish` at the end, and take what is
    final with `take_content` / `take_reasoning` / `take_call_deltas` (each returns only what is new).
    This class is the marker pass and the sink of the family readers; `ReplyParts` keeps what it found.

    `starts_in_reasoning`: the prompt opened a think block, so the reply begins inside it and the first
    closer ends it. `reply_prefix`: an opening marker the prompt ended with (Functionary's `>>>`).
    `opener_echoed`: a constrained reply; a think opener at its very start is the prompt's, which
    llama-server repeats under `reasoning_format: none`; the constraint allowed no think block, so the
    opener is dropped and what follows is the reply. `forced`: the reply is a constrained call."""

    def __init__(
        self,
        tools: Iterable[Any] | Offered | None,
        *,
        starts_in_reasoning: bool = False,
        reply_prefix: str = "",
        opener_echoed: bool = False,
        forced: bool = False,
    ) -> None:
        self.offered = Offered.of(tools)
        super().__init__(self.offered.names)
        self._lead: str | None = "" if opener_echoed else None  # held until the echo is ruled in or out
        self._pending = ""  # text the marker pass has not classified yet
        self._mode = "text"  # text | reasoning | header | block
        self.forced = forced
        self._text = _text_markers()
        self._shape = ProseShape()
        self._content_started = False  # non-space content was read (a JSON call no longer opens the reply)
        self._reasoning: tuple[Markers, dict[str, tuple[str, ...]]] | None = None
        self._header_opener = ""
        self._header_searched = 0
        self._reader: Reader | None = None
        self._closes: tuple[str, ...] = ()  # what ends the current think block
        self._block_reasoning: tuple[str, ...] | None = None  # the think closers a block interrupted
        self._back_to_reasoning: tuple[str, ...] | None = None  # a block gave its text back to them
        self._truncated = False
        self.finished = False
        if starts_in_reasoning:
            self._enter_reasoning(_THINK_CLOSES, calls=True)
        if reply_prefix:
            self.feed(reply_prefix)
            if self._reader is not None:
                self._reader.forget_opener()  # the prompt wrote it: never content

    def feed(self, chunk: str) -> None:
        if self._lead is not None and chunk:
            chunk = self._past_echo(chunk, final=False)
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
        if self._lead is not None:
            self._pending += self._past_echo("", final=True)
        self._process(final=True)
        self.drop_open_calls()
        self._json.finish(truncated=truncated)
        self._drain()
        self.finished = True

    def _past_echo(self, chunk: str, *, final: bool) -> str:
        """The reply's start without the echoed opener; "" while the start could still be one."""
        lead = (self._lead or "") + chunk
        start = lead.lstrip()
        opener = next((o for o in REASONING if start.startswith(o)), None)
        if opener is None and not final and (not start or any(o.startswith(start) for o in REASONING)):
            self._lead = lead
            return ""
        self._lead = None
        return start[len(opener) :] if opener is not None else lead

    # -- the marker pass --------------------------------------------------------------------------

    def _process(self, *, final: bool) -> None:
        # `at` walks through _pending; the string is cut once per call, never per marker, so a reply
        # full of markers costs linear time in one piece too.
        pending = self._pending
        at = 0
        while True:
            if self._mode == "block":
                reader = self._reader
                assert reader is not None
                at = reader.read(pending, at, final)
                if not reader.done:
                    break
                self._end_block()
                continue
            step = self._text_step if self._mode == "text" else self._reasoning_step
            if self._mode == "header":
                step = self._header_step
            at, more = step(pending, at, final)
            if not more:
                break
        self._pending = pending[at:]

    def _find(
        self, sets: tuple[Markers, dict[str, tuple[str, ...]]], pending: str, at: int, final: bool
    ) -> tuple[re.Match[str] | None, int]:
        """The next marker of `sets` (None if none yet), and where the text before it ends: a marker a
        longer one may still extend, or a tail that may start one, is held back unless `final`."""
        markers, extended = sets
        m = markers.search(pending, at)
        if m is not None and not final and _may_grow(extended[m.group()], pending, m.start()):
            return None, m.start()
        if m is not None:
            return m, m.start()
        return None, len(pending) if final else markers.held(pending, at)

    def _text_step(self, pending: str, at: int, final: bool) -> tuple[int, bool]:
        shape = self._shape
        if shape.quote:
            stop = shape.string(pending, at, final)
            self._prose(pending[at:stop])
            return stop, stop < len(pending) or (final and not shape.quote)
        markers = self._text[0]
        s = _prose_pattern(markers).search(pending, at)
        if s is not None and s.group() in _STRUCTURE:
            self._prose(pending[at : s.start()])
            if not final and s.start() >= markers.held(pending, at):
                return s.start(), False  # it may start a marker: wait
            opens = _opens_call(pending, s.start(), final, self.offered) if self._implicit_call() else ""
            if opens is None:
                return s.start(), False
            if opens:
                kind = JsonBlockReader if opens == "json" else PythonicReader
                reader = kind(self, self.offered, "", weak=True, strip=())
                reader.scan_given_back = True  # not a call: the JSON scanner reads it as prose
                self._start_block(reader)
                return s.start(), True
            self._prose(s.group())
            shape.see(s.group())
            return s.end(), True
        m, stop = self._find(self._text, pending, at, final)
        self._prose(pending[at:stop])
        if m is None:
            return stop, False
        self._open_marker(m.group())
        return m.end(), True

    def _implicit_call(self) -> bool:
        """A JSON value here is read as a call from its first character: a forced reply's, or one that
        opens an `auto` reply (Llama 3.x's native format is a bare JSON call); elsewhere in prose it is
        held until it closes (json_scanner)."""
        return bool(self.offered) and self._shape.depth == 0 and (self.forced or not self._content_started)

    def _prose(self, text: str) -> None:
        if text:
            self._content_started = self._content_started or not text.isspace()
            self._to_json(text)

    def _reasoning_step(self, pending: str, at: int, final: bool) -> tuple[int, bool]:
        assert self._reasoning is not None
        m, stop = self._find(self._reasoning, pending, at, final)
        self._add_reasoning(pending[at:stop])
        if m is None:
            return stop, False
        if m.group() in self._closes:
            self._mode = "text"
        else:  # a call opener the reference allows inside a think block
            self._block_reasoning = self._closes
            self._start_block(_BLOCKS[m.group()].open_block(self, self.offered, m.group()))
        return m.end(), True

    def _header_step(self, pending: str, at: int, final: bool) -> tuple[int, bool]:
        start = max(at, at + self._header_searched - len(HARMONY_MESSAGE) + 1)
        i = pending.find(HARMONY_MESSAGE, start, at + HARMONY_MAX_HEADER + len(HARMONY_MESSAGE))
        if i >= 0:
            self._on_header(self._header_opener + pending[at:i])
            return i + len(HARMONY_MESSAGE), True
        if final or len(pending) - at > HARMONY_MAX_HEADER:
            self._mode = "text"  # no header after all: a stray token (dropped), or prose (kept)
            if self._header_opener in HARMONY_WEAK_OPENERS:
                self._to_json(self._header_opener)
            return at, True
        self._header_searched = len(pending) - at
        return at, False

    def _enter_reasoning(self, closes: tuple[str, ...], *, calls: bool) -> None:
        self._mode = "reasoning"
        self._closes = closes
        self._reasoning = _reasoning_markers(closes, calls)

    def _open_marker(self, marker: str) -> None:
        if marker in REASONING:
            self._enter_reasoning(REASONING[marker], calls=marker in CALLS_END_THINKING)
        elif marker in HARMONY_OPENERS:
            self._mode = "header"
            self._header_opener = marker
            self._header_searched = 0
        elif marker in _BLOCKS:
            self._start_block(_BLOCKS[marker].open_block(self, self.offered, marker))
        # else a dropped marker: nothing to do, the text goes on

    def _start_block(self, reader: Reader) -> None:
        reader.truncated = self._truncated
        self._reader = reader
        self._mode = "block"

    def _end_block(self) -> None:
        self._reader = None
        self._block_reasoning = None
        closes, self._back_to_reasoning = self._back_to_reasoning, None
        if closes is not None:
            self._enter_reasoning(closes, calls=True)
        else:
            self._mode = "text"

    def _on_header(self, header: str) -> None:
        kind = harmony_kind(header)
        if kind == "reasoning":
            self._enter_reasoning(HARMONY_REASONING_CLOSES, calls=False)
        elif kind == "call":
            name = harmony_target(header)
            self._start_block(
                HarmonyReader(self, self.offered, "", weak=False, strip=GPT_OSS.closes, name=name)
            )
        else:
            self._mode = "text"

    # -- the sink: what the readers report ---------------------------------------------------------------

    def open_call(self, name: str) -> int:
        self._block_reasoning = None  # a call ends the think block it was written in
        return super().open_call(name)

    def give_back(self, text: str, *, cut: bool) -> None:
        """Text of a block that was not a (closed) call: reasoning again when the block interrupted a
        think block and made no call; else content, never searched for bare calls (the family's reader
        read it, and with its markers stripped it could only mislead)."""
        self.drop_open_calls()
        if self._block_reasoning is not None:
            self._add_reasoning(text)
            self._back_to_reasoning = self._block_reasoning
        elif self._reader is not None and self._reader.scan_given_back and not cut:
            self._to_json(text)
        else:
            self._to_content_unscanned(text, cut=cut)


def _opens_call(text: str, at: int, final: bool, offered: Offered) -> str | None:
    """What the bracket at `at` opens: "json" (an object, or a list of objects), "pythonic" (a list whose
    first item calls an offered tool, `[f(`), "" for anything else (left to the JSON scanner); None
    until that is known."""
    if text[at] == "{":
        return "json"
    m = _SPACE.match(text, at + 1, at + 1 + _MAX_SPACE)
    after = m.end() if m is not None else at + 1
    if after == len(text):
        return None if not final and after - at <= _MAX_SPACE else ""
    if text[after] == "{":
        return "json"
    name = _PYTHONIC_NAME.match(text, after, after + 160)
    if name is None:
        if not final and len(text) - after < 160 and _NAME_SO_FAR.fullmatch(text, after):
            return None
        return ""
    return "pythonic" if name.group(1) in offered else ""


_SPACE = re.compile(r"\s*")
_MAX_SPACE = 64
_PYTHONIC_NAME = re.compile(r"([A-Za-z_][\w.\-]{0,127}?)\s*\(")
_NAME_SO_FAR = re.compile(r"[A-Za-z_][\w.\-]*\s*")


def _may_grow(longer: tuple[str, ...], text: str, start: int) -> bool:
    """A longer marker that starts with the one found at `start` may still arrive: only near the end."""
    remaining = len(text) - start
    return any(remaining < len(m) and m.startswith(text[start:]) for m in longer)


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
