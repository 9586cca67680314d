"""Model text -> reasoning, content and OpenAI tool calls.

Models with no function-calling API write calls as text: in their family's native format (a marked
block: `<tool_call>…</tool_call>`, `[TOOL_CALLS]…`, `<|python_tag|>…`, … see families.py), or as bare
JSON objects and arrays, ```json fences, and pythonic `[f(a=1)]` lists, with prose around them; reasoning
models think in `<think>…</think>` (or `[THINK]`, gpt-oss's analysis channel) first.

`ReplyScanner` does it in one left-to-right pass that can be fed in pieces, in two stages:
1. a marker pass cuts the text into prose, reasoning and family blocks (one regex search over every
   family's markers at once; a partial marker at the end of a piece is held back, never more);
2. prose goes through `_JsonScanner`, which finds bare/fenced JSON and pythonic calls; each family block
   is parsed once when it closes, by the family's parser, and its calls are recorded in text order.
The streaming path and the one-shot `parse_tool_calls` run the same code, and both read content through
`take_content`, so they agree for any chunking.

Guarantees: linear time (each character is looked at a bounded number of times, candidate spans and blocks
are decoded once each, no string is rebuilt per piece), bounded nesting (depth is counted, not stacked,
past MAX_DEPTH), and no exception escapes for any input text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .call_shapes import Call, as_arguments, as_call, calls_in_json, loads, pythonic_calls
from .families import (
    DROPPED_MARKERS,
    GPT_OSS,
    HARMONY_MAX_HEADER,
    HARMONY_MESSAGE,
    HARMONY_OPENERS,
    HARMONY_REASONING_CLOSES,
    REASONING,
    Family,
    families_by_marker,
    harmony_kind,
)

__all__ = [
    "MAX_DEPTH",
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

MAX_DEPTH = 64  # deeper JSON is never a sane tool call; past it brackets are only counted
TOOL_CALLS_MARKER = "[TOOL_CALLS]"
FENCE = "```"

# What can change the JSON scanner's state, by state. Everything else is skipped by the regex engine.
_AT_TOP = re.compile(r"[{\[`]")
_IN_JSON = re.compile(r'[{}\[\]"`]')
_IN_STRING = re.compile(r'["\\]')
_OPEN_RUN = re.compile(r"[{\[]+")
_CLOSE_RUN = re.compile(r"[}\]]+")
_MIN_CALL_LEN = len('{"name":""}')
_MIN_PYTHONIC_LEN = len("[f()]")
_DEFER_RATIO = 4  # inside an open structure, rescan only once the unscanned text is 1/4 of the window


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
    names: set[str] = set()
    for tool in tools or ():
        if isinstance(tool, str):
            names.add(tool)
        elif isinstance(tool, Mapping):
            function = tool.get("function")
            if isinstance(function, Mapping) and isinstance(function.get("name"), str):
                names.add(function["name"])
            elif isinstance(tool.get("name"), str):
                names.add(tool["name"])
    return frozenset(names)


def call_id(seed: str, index: int) -> str:
    """Deterministic id, so a streamed and a non-streamed parse of one reply agree."""
    digest = hashlib.sha256(f"{seed}\x00{index}".encode()).hexdigest()[:24]
    return f"call_{digest}"


# -- stage 2: bare and fenced JSON calls in prose -----------------------------------------------------


@dataclass(slots=True)
class _Open:
    char: str
    start: int
    children: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, depth) closed spans
    depth: int = 1  # deepest nesting seen inside, this bracket included


@dataclass(slots=True)
class _Fence:
    start: int
    body_start: int


class _CallMatcher:
    """Which offered tools a closed bracketed span calls: JSON naming one in quotes, or a pythonic list
    `[name(...)]`. A cheap regex rejection first, since most spans in prose are not calls."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        ordered = sorted(names)
        self._quoted = (
            re.compile("|".join(re.escape(json.dumps(name)) for name in ordered)) if names else None
        )
        self._called = (
            re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(name) for name in ordered) + r")\s*\(")
            if names
            else None
        )

    def calls(self, text: str, start: int, end: int) -> list[Call] | None:
        quoted = (
            end - start >= _MIN_CALL_LEN
            and self._quoted is not None
            and self._quoted.search(text, start, end) is not None
        )
        pythonic = (
            text[start] == "["
            and self._called is not None
            and self._called.search(text, start, end) is not None
        )
        if not (quoted or pythonic):
            return None
        calls: list[Call] | None = None
        if quoted:
            ok, value = loads(text[start:end])
            calls = calls_in_json(value, self.names) if ok else None
        if not calls and pythonic:
            calls = pythonic_calls(text[start:end], self.names)
        return calls


def _fence_holds_only_calls(text: str, body_start: int, inner: Iterable[tuple[int, int]], end: int) -> bool:
    """Whether a fence from `body_start` to `end` (its closing ``` included if there) is calls and space."""
    cursor = body_start
    for start, stop in inner:
        if text[cursor:start].strip():
            return False
        cursor = stop
    closing = end - len(FENCE) if text.startswith(FENCE, end - len(FENCE)) else end
    return not text[cursor:closing].strip()


class _ContentWindow:
    """The text a scanner has seen, as a window that starts where nothing before it can change any more,
    with the regions found to be calls or fences (`_removed`): the rest is content, handed out once
    stable (`_JsonScanner.take_content`). Offsets are relative to the window; `_pos` is how far it was
    scanned."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._unscanned = 0  # characters in _parts
        self._text = ""
        self._pos = 0
        self._removed: list[tuple[int, int]] = []  # regions of _text that are calls, fences: not content
        self._cursor = 0  # content before this offset has been taken
        self._removed_index = 0  # first removed region not yet passed by the cursor

    def _joined(self) -> str:
        if self._parts:
            self._text += "".join(self._parts)  # one copy per rescan; rescans are spaced (see _JsonScanner)
            self._parts.clear()
            self._unscanned = 0
        return self._text

    def _rebase(self) -> None:
        """Drop the text before the scan position once nothing refers to it (the caller knows nothing
        is open)."""
        if self._cursor < self._pos or self._removed_index < len(self._removed) or self._pos == 0:
            return
        self._text = self._text[self._pos :]
        self._cursor = 0
        self._pos = 0
        self._removed.clear()
        self._removed_index = 0


class _BracketScanner(_ContentWindow):
    """The scanning machinery of `_JsonScanner`: brackets, strings and ``` fences, one regex search per
    structural character; each closed top-level span that calls an offered tool is recorded."""

    def __init__(self, names: frozenset[str]) -> None:
        super().__init__()
        self.names = names
        self._matcher = _CallMatcher(names)
        self._stack: list[_Open] = []
        self._overflow = 0  # brackets open beyond MAX_DEPTH: counted only
        self._in_string = False
        self._fence: _Fence | None = None
        self._fence_calls: list[int] = []  # indexes into _removed made inside the open fence
        self.calls: list[Call] = []
        self.finished = False

    # -- scanning ---------------------------------------------------------------------------------

    def _scan(self, *, final: bool) -> None:
        # One regex search per structural character; plain text and string bodies are skipped in C.
        text = self._joined()
        n = len(text)
        pos = self._pos
        stack = self._stack
        while pos < n:
            if self._in_string:
                m = _IN_STRING.search(text, pos)
                if m is None:
                    pos = n
                    break
                i = m.start()
                if text[i] == "\\":
                    if i + 1 >= n and not final:
                        pos = i
                        break
                    pos = i + 2
                    continue
                self._in_string = False
                pos = i + 1
                continue
            m = (_IN_JSON if stack or self._overflow > 0 else _AT_TOP).search(text, pos)
            if m is None:
                pos = n
                break
            i = m.start()
            c = text[i]
            if c == "{" or c == "[":
                if self._overflow or len(stack) >= MAX_DEPTH:  # counted only; inline, as this is hot
                    run_end = _OPEN_RUN.match(text, i).end()  # type: ignore[union-attr]
                    self._overflow += run_end - i
                    stack[-1].depth = MAX_DEPTH + 1
                    pos = run_end
                    continue
                stack.append(_Open(c, i))
                pos = i + 1
            elif c == "}" or c == "]":
                if self._overflow:
                    run_end = min(_CLOSE_RUN.match(text, i).end(), i + self._overflow)  # type: ignore[union-attr]
                    self._overflow -= run_end - i
                    pos = run_end
                    continue
                self._pop(c, i + 1)
                pos = i + 1
            elif c == '"':
                self._in_string = True
                pos = i + 1
            else:  # a backtick
                resume = self._at_backtick(text, i, final=final)
                if resume is None:
                    pos = i
                    break
                pos = resume
        self._pos = pos

    def _pop(self, closer: str, end: int) -> None:
        stack = self._stack
        if not stack:
            return  # a stray closer in prose
        top = stack[-1]
        if (top.char == "{") != (closer == "}"):
            self._abandon_stack()  # mismatched brackets: nothing open here is JSON
            return
        stack.pop()
        if stack:
            parent = stack[-1]
            if end - top.start >= _MIN_PYTHONIC_LEN:
                parent.children.append((top.start, end, top.depth))
            if top.depth >= parent.depth:
                parent.depth = top.depth + 1
        else:
            self._in_string = False
            self._consider((top.start, end, top.depth))

    def _abandon_stack(self) -> None:
        """Open brackets turned out not to be JSON: their closed inner spans stand on their own."""
        abandoned = list(self._stack)
        self._stack.clear()  # in place: _scan holds a reference
        self._overflow = 0
        self._in_string = False
        for opened in abandoned:
            for span in opened.children:
                self._consider(span)

    def _consider(self, span: tuple[int, int, int]) -> None:
        start, end, depth = span
        calls = self._matcher.calls(self._text, start, end) if depth <= MAX_DEPTH else None
        if calls:
            if self._fence is not None:
                self._fence_calls.append(len(self._removed))
            self._removed.append((start, end))
            self.calls.extend(calls)

    # -- fences -----------------------------------------------------------------------------------

    def _at_backtick(self, text: str, i: int, *, final: bool) -> int | None:
        """A backtick at `i`: where scanning resumes, or None to wait for more text."""
        if not final and i + len(FENCE) > len(text):
            return None
        if not text.startswith(FENCE, i):
            return i + 1
        if self._stack or self._overflow:
            self._abandon_stack()  # a fence inside brackets: the brackets were prose
        if self._fence is not None:
            self._close_fence(i + len(FENCE))
            return i + len(FENCE)
        newline = text.find("\n", i + len(FENCE))
        if newline < 0:
            if not final:
                return None
            newline = len(text) - 1
        self._fence = _Fence(start=i, body_start=newline + 1)
        self._fence_calls = []
        return newline + 1

    def _close_fence(self, end: int) -> None:
        fence, self._fence = self._fence, None
        if fence is None or not self._fence_calls:
            return
        inner = [self._removed[k] for k in self._fence_calls]
        if not _fence_holds_only_calls(self._text, fence.body_start, inner, end):
            return  # the fence holds more than calls: keep it, minus the calls
        del self._removed[self._fence_calls[0] :]
        self._removed.append((fence.start, end))
        self._fence_calls = []


class _JsonScanner(_BracketScanner):
    """Incremental finder of bare/fenced JSON and pythonic calls in prose.

    When no structure is open and all content before the scan position was taken, the window is cut
    there (`_rebase`), so streaming prose costs the size of each piece, not of the reply so far. Inside
    an open structure the rescans are spaced out (`_DEFER_RATIO`), so a long call streamed in tiny pieces
    costs linear time too; nothing of it could be emitted before it closes anyway."""

    def feed(self, chunk: str) -> None:
        if not chunk:
            return
        self._parts.append(chunk)
        self._unscanned += len(chunk)
        # Something open (a bracket, a fence, a fence line waiting for its newline): a rescan would start
        # behind the end, so rescans are spaced out.
        waiting = self._stack or self._overflow > 0 or self._fence is not None or self._pos < len(self._text)
        if waiting and self._unscanned * _DEFER_RATIO < len(self._text):
            return
        self._scan(final=False)

    def add_calls(self, calls: Iterable[Call]) -> None:
        """Calls found by a family parser between two pieces of prose: what was open before them was prose
        (a block is never inside JSON), so it is settled first, keeping calls in text order."""
        self._scan(final=True)
        if self._stack or self._overflow:
            self._abandon_stack()
        self._pos = min(self._pos, len(self._text))  # a final escape skip must not eat later text
        self.calls.extend(calls)

    def add_unscanned(self, text: str) -> None:
        """Content that must not be searched for calls (a family block cut off by max_tokens). Only at the
        end of the reply: what is open before it is settled first, as for `add_calls`."""
        self._scan(final=True)
        if self._stack or self._overflow:
            self._stack.clear()  # cut off too: nothing inside is a call
            self._overflow = 0
            self._in_string = False
        if self._fence is not None:
            self._close_fence(len(self._text))
        self._text = self._joined() + text
        self._pos = len(self._text)

    def finish(self, *, truncated: bool) -> None:
        """End of reply. `truncated` (the server stopped at max_tokens): unclosed brackets are a cut-off
        structure whose inner objects are not calls; otherwise an unclosed bracket was prose."""
        self._scan(final=True)
        if truncated:
            self._stack.clear()
            self._overflow = 0
        else:
            self._abandon_stack()
        if self._fence is not None:
            self._close_fence(len(self._text))
        self.finished = True

    def _stable_end(self) -> int:
        """Text before this offset will not change role (content vs. call) whatever comes next."""
        if self.finished:
            return len(self._text)  # finish() joined every piece
        end = self._pos
        if self._stack:
            end = min(end, self._stack[0].start)
        if self._fence is not None:
            end = min(end, self._fence.start)
        return end

    def take_content(self) -> str:
        """Content that became final since the last call: the text up to the stable end, calls cut out."""
        text = self._text  # no join: the stable end never passes the scanned (joined) text
        end = self._stable_end()
        removed = self._removed
        pieces: list[str] = []
        cursor, index = self._cursor, self._removed_index
        while index < len(removed) and removed[index][1] <= end:
            start, stop = removed[index]
            if start > cursor:
                pieces.append(text[cursor:start])
            cursor = max(cursor, stop)
            index += 1
        if cursor < end:
            pieces.append(text[cursor:end])
            cursor = end
        self._cursor, self._removed_index = cursor, index
        if not (self._stack or self._overflow or self._fence is not None):
            self._rebase()
        return "".join(pieces)


# -- stage 1: markers -> prose, reasoning, family blocks ----------------------------------------------

_BLOCKS = families_by_marker()
_OPENERS: tuple[str, ...] = (*_BLOCKS, *REASONING, *HARMONY_OPENERS, *DROPPED_MARKERS)
_ALL_CLOSES = {c for closes in REASONING.values() for c in closes} | set(HARMONY_REASONING_CLOSES)


def _alternation(markers: Iterable[str]) -> re.Pattern[str]:
    # Longest first, so that at one position the longest marker wins.
    return re.compile("|".join(re.escape(m) for m in sorted(set(markers), key=len, reverse=True)))


def _prefix_at_end(markers: Iterable[str]) -> tuple[re.Pattern[str], int]:
    """A pattern matching a proper prefix of a marker at the very end of a text, and the longest one."""
    prefixes = {m[:k] for m in set(markers) for k in range(1, len(m))}
    if not prefixes:
        return re.compile(r"(?!)"), 0
    return re.compile("(?:" + _alternation(prefixes).pattern + r")\Z"), max(len(p) for p in prefixes)


_OPEN_RE = _alternation(_OPENERS)
_OPEN_PREFIX_RE, _OPEN_PREFIX_MAX = _prefix_at_end(_OPENERS)
# A marker found at the end of a piece that a longer marker could still extend.
_EXTENDED_BY = {m: tuple(x for x in _OPENERS if x != m and x.startswith(m)) for m in _OPENERS}


@dataclass(slots=True)
class _Block:
    """A family's tool-call block being read: from its opener to one of its closers."""

    families: tuple[Family, ...]
    opener: str  # the marker text, restored when a weak block does not parse ("" if implicit)
    head: str  # gpt-oss: the message header
    closes: tuple[str, ...]
    ends_before: tuple[str, ...]
    close_re: re.Pattern[str] | None
    parts: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, families: tuple[Family, ...], opener: str, *, head: str) -> _Block:
        closes = tuple(dict.fromkeys(c for f in families for c in f.closes))
        ends_before = tuple(dict.fromkeys(c for f in families for c in f.ends_before))
        ends = (*closes, *ends_before)
        return cls(families, opener, head, closes, ends_before, _alternation(ends) if ends else None)

    def read(self, pending: str, at: int, final: bool) -> tuple[int, str | None]:
        """Take the block's text from `pending[at:]`: where the marker pass resumes, and the closer when
        the block closed there ("" when it ends before a marker that is not its own), else None. At the
        final piece all of the rest is taken; before it, a tail that may start a closer is left."""
        m = self.close_re.search(pending, at) if self.close_re is not None else None
        if m is not None:
            self.parts.append(pending[at : m.start()])
            if m.group() in self.ends_before:
                return m.start(), ""
            return m.end(), m.group()
        n = len(pending)
        if final:
            self.parts.append(pending[at:])
            return n, None
        keep = max((len(c) for c in (*self.closes, *self.ends_before)), default=1) - 1
        keep = min(keep, n - at)
        self.parts.append(pending[at : n - keep])
        return n - keep, None

    def parsed(self, names: frozenset[str]) -> list[str | Call] | None:
        """The block as content and calls, by the first of its families that parses it; None if none does."""
        body = "".join(self.parts)
        for family in self.families:
            parts = family.parse(self.head, body, names)
            if parts is not None:
                return [_without(part, family.strip) if isinstance(part, str) else part for part in parts]
        return None

    def as_prose(self, closer: str) -> str:
        """The block as text, when no family parsed it: all of it if every family is weak (it was prose
        after all), else the body without the families' markers."""
        body = "".join(self.parts)
        if all(f.weak for f in self.families):
            return self.opener + body + closer
        return _without(body, (self.opener, *(m for f in self.families for m in f.strip)))


class _ReplyParts:
    """What a reply scan has found so far: content (through the JSON scanner, which cuts bare calls out of
    it), reasoning and calls; each take returns only what is new since the last one."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self._json = _JsonScanner(names)
        self._content: list[str] = []  # all final content so far, for the one-shot reply
        self._content_taken = 0
        self._reasoning_parts: list[str] = []
        self._reasoning_taken = 0

    @property
    def calls(self) -> list[Call]:
        return self._json.calls

    def take_content(self) -> str:
        self._drain()
        piece = "".join(self._content[self._content_taken :])
        self._content_taken = len(self._content)
        return piece

    def take_reasoning(self) -> str:
        parts = self._reasoning_parts
        piece = "".join(parts[self._reasoning_taken :])
        self._reasoning_taken = len(parts)
        return piece

    def full_reasoning(self) -> str:
        return "".join(self._reasoning_parts)

    def full_content(self) -> str:
        self._drain()
        return "".join(self._content)

    def _drain(self) -> None:
        """Move final content out of the JSON scanner after each step, so its window stays small."""
        piece = self._json.take_content()
        if piece:
            self._content.append(piece)

    def _to_json(self, text: str) -> None:
        if text:
            self._json.feed(text)
            self._drain()

    def _add_reasoning(self, text: str) -> None:
        if text:
            self._reasoning_parts.append(text)

    def _add_block(self, block: _Block, *, cut_off: bool, closer: str) -> None:
        """A closed (or `cut_off`) family block: its calls and content, or its text when no family parses
        it. A cut-off block's text is never searched for calls."""
        parts = None if cut_off else block.parsed(self.names)
        if parts is not None:
            for part in parts:
                if isinstance(part, str):
                    self._to_json(part)
                else:
                    self._json.add_calls([part])
                    self._drain()
        elif cut_off:
            self._json.add_unscanned(block.as_prose(closer))
            self._drain()
        else:
            self._to_json(block.as_prose(closer))


class ReplyScanner(_ReplyParts):
    """Incremental parser of one reply: `feed` text as it arrives, `finish` at the end, and take what is
    final with `take_content` / `take_reasoning` (both return only what is new since the last take).
    This class is the marker pass (prose, reasoning, harmony headers, family blocks); `_ReplyParts`
    keeps what it found.

    `starts_in_reasoning`: the prompt opened a think block, so the reply begins inside it and the first
    `</think>` ends it. `reply_prefix`: an opening marker the prompt ended with (Functionary's `>>>`).
    `opener_echoed`: a constrained reply; a think opener at its very start is the prompt's, which
    llama-server repeats under `reasoning_format: none`; the constraint allowed no think block, so
    the opener is dropped and what follows is the reply."""

    def __init__(
        self,
        names: frozenset[str],
        *,
        starts_in_reasoning: bool = False,
        reply_prefix: str = "",
        opener_echoed: bool = False,
    ) -> None:
        super().__init__(names)
        self._lead: str | None = "" if opener_echoed else None  # held until the echo is ruled in or out
        self._pending = ""  # text the marker pass has not classified yet
        self._mode = "text"  # text | reasoning | header | block
        self._reasoning_close: re.Pattern[str] | None = None
        self._reasoning_close_prefix: tuple[re.Pattern[str], int] | None = None
        self._header_opener = ""
        self._header_searched = 0
        self._block: _Block | None = None
        self._truncated = False
        self.finished = False
        if starts_in_reasoning:
            self._enter_reasoning(tuple(sorted(_ALL_CLOSES)))
        if reply_prefix:
            self.feed(reply_prefix)
            if self._block is not None:
                self._block.opener = ""  # the prompt wrote it: never content

    def feed(self, chunk: str) -> None:
        if self._lead is not None and chunk:
            chunk = self._past_echo(chunk, final=False)
        if chunk:
            self._pending += chunk  # _pending stays short: a held marker prefix, a header, a block tail
            self._process(final=False)

    def finish(self, *, truncated: bool = False) -> None:
        """End of reply; `truncated` (finish_reason length): a block cut off by the end is not a call."""
        if self.finished:
            return
        self._truncated = truncated
        if self._lead is not None:
            self._pending += self._past_echo("", final=True)
        self._process(final=True)
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
        # full of markers costs linear time in one piece too. Each step returns where it stopped and
        # whether the pass goes on (a mode changed) or waits for more text.
        pending = self._pending
        at = 0
        while True:
            mode = self._mode
            if (
                mode == "block"
            ):  # inline (no step method): a block streamed in tiny pieces passes here per piece
                block = self._block
                assert block is not None
                at, closer = block.read(pending, at, final)
                if closer is not None:
                    self._close_block(closed=True, closer=closer)
                elif final:
                    self._close_block(closed=False, closer="")  # cut off by the end of the reply
                else:
                    break
                continue
            if mode == "reasoning":  # inline too: a long think block streamed in tiny pieces
                assert self._reasoning_close is not None and self._reasoning_close_prefix is not None
                m = self._reasoning_close.search(pending, at)
                if m is not None:
                    self._add_reasoning(pending[at : m.start()])
                    self._mode = "text"
                    at = m.end()
                    continue
                prefix_re, longest = self._reasoning_close_prefix
                hold = 0 if final else _held(pending, at, prefix_re, longest)
                self._add_reasoning(pending[at : len(pending) - hold])
                at = len(pending) - hold
                break
            if mode == "text":
                at, more = self._text_step(pending, at, final)
            else:
                at, more = self._header_step(pending, at, final)
            if not more:
                break
        self._pending = pending[at:]

    def _text_step(self, pending: str, at: int, final: bool) -> tuple[int, bool]:
        m = _OPEN_RE.search(pending, at)
        if m is not None and not final and _may_grow(m.group(), pending, m.start()):
            self._to_json(pending[at : m.start()])
            return m.start(), False
        if m is not None:
            self._to_json(pending[at : m.start()])
            self._open(m.group())
            return m.end(), True
        n = len(pending)
        hold = 0 if final else _held(pending, at, _OPEN_PREFIX_RE, _OPEN_PREFIX_MAX)
        self._to_json(pending[at : n - hold])
        return n - hold, False

    def _header_step(self, pending: str, at: int, final: bool) -> tuple[int, bool]:
        start = max(at, at + self._header_searched - len(HARMONY_MESSAGE) + 1)
        i = pending.find(HARMONY_MESSAGE, start, at + HARMONY_MAX_HEADER + len(HARMONY_MESSAGE))
        if i >= 0:
            self._on_header(self._header_opener + pending[at:i])
            return i + len(HARMONY_MESSAGE), True
        if final or len(pending) - at > HARMONY_MAX_HEADER:
            self._mode = "text"  # no header after all: the opener was a stray token, dropped
            return at, True
        self._header_searched = len(pending) - at
        return at, False

    def _enter_reasoning(self, closes: tuple[str, ...]) -> None:
        self._mode = "reasoning"
        self._reasoning_close = _alternation(closes)
        self._reasoning_close_prefix = _prefix_at_end(closes)

    def _open(self, marker: str) -> None:
        if marker in REASONING:
            self._enter_reasoning(REASONING[marker])
        elif marker in HARMONY_OPENERS:
            self._mode = "header"
            self._header_opener = marker
            self._header_searched = 0
        elif marker in _BLOCKS:
            families = _BLOCKS[marker]
            self._start_block(families, marker, head="")
        # else a dropped marker: nothing to do, the text goes on

    def _start_block(self, families: tuple[Family, ...], opener: str, *, head: str) -> None:
        self._block = _Block.of(families, opener, head=head)
        self._mode = "block"

    def _on_header(self, header: str) -> None:
        kind = harmony_kind(header)
        if kind == "reasoning":
            self._enter_reasoning(HARMONY_REASONING_CLOSES)
        elif kind == "call":
            self._start_block((GPT_OSS,), "", head=header)
        else:
            self._mode = "text"

    def _close_block(self, *, closed: bool, closer: str) -> None:
        block, self._block = self._block, None
        self._mode = "text"
        assert block is not None
        self._add_block(block, cut_off=self._truncated and not closed, closer=closer)


def _may_grow(marker: str, text: str, start: int) -> bool:
    """A longer marker that starts with `marker` may still arrive: only near the end of the text."""
    remaining = len(text) - start
    return any(remaining < len(longer) and longer.startswith(text[start:]) for longer in _EXTENDED_BY[marker])


def _held(text: str, at: int, prefix_re: re.Pattern[str], longest: int) -> int:
    """Length of the end of `text[at:]` that may be the start of a marker (held back until more arrives)."""
    m = prefix_re.search(text, max(at, len(text) - longest))
    return len(text) - m.start() if m is not None else 0


def _without(text: str, markers: Iterable[str]) -> str:
    for marker in markers:
        if marker:
            text = text.replace(marker, "")
    return text


def reply_from_scanner(scanner: ReplyScanner, *, id_seed: str = "") -> ParsedReply:
    """The final split of a finished scan: content and reasoning stripped, None when empty."""
    content = scanner.full_content().strip()
    reasoning = scanner.full_reasoning().strip()
    calls = tuple(
        ToolCall(id=call_id(id_seed, index), name=name, arguments=arguments)
        for index, (name, arguments) in enumerate(scanner.calls)
    )
    return ParsedReply(content=content or None, tool_calls=calls, reasoning=reasoning or None)


def parse_tool_calls(
    text: str,
    tools: Iterable[Any] | None,
    *,
    id_seed: str = "",
    truncated: bool = False,
    starts_in_reasoning: bool = False,
    reply_prefix: str = "",
    opener_echoed: bool = False,
) -> ParsedReply:
    """Split a model reply into reasoning, prose and calls to the offered `tools` (names or OpenAI
    tool dicts).

    Accepts every family format in families.FAMILIES, bare JSON objects and arrays, ```json fences,
    pythonic `[f(a=1)]` lists, and the key spellings name/arguments, function/parameters and OpenAI's
    {"type": "function", "function": {...}}. JSON that names no offered tool stays prose; a block cut off
    by `truncated` is never a call. Never raises on any `text`; runs in time linear in its length.
    """
    scanner = ReplyScanner(
        tool_names(tools),
        starts_in_reasoning=starts_in_reasoning,
        reply_prefix=reply_prefix,
        opener_echoed=opener_echoed,
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
