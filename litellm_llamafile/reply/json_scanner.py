"""Calls written as bare JSON, ```json fences or pythonic `[f(a=1)]` lists in prose, found in one
left-to-right pass that can be fed in pieces (the second stage of parsing.ReplyScanner: the prose between
family blocks goes through `JsonScanner`).

Brackets, strings and fences are walked with one regex search per structural character; each closed
top-level span is decoded once and kept as calls when it calls offered tools. Content is handed out only
once its role is final (`take_content`), so a streamed and a one-shot reply split the same way.
Linear time: the window is cut where nothing open remains, and inside an open structure the rescans are
spaced out; nesting past MAX_DEPTH is counted, not stacked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .call_shapes import Call, calls_in_json, loads, pythonic_calls

MAX_DEPTH = 64  # deeper JSON is never a sane tool call; past it brackets are only counted
FENCE = "```"

# What can change the JSON scanner's state, by state. Everything else is skipped by the regex engine.
_AT_TOP = re.compile(r"[{\[`]")
_IN_JSON = re.compile(r"""[{}\[\]"'`]""")
# A string ends at its quote; a single-quoted one (a pythonic call's) also at a newline, which no Python
# string literal holds, so an apostrophe inside brackets costs at most a line.
_IN_STRING = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\\n]")}
_OPEN_RUN = re.compile(r"[{\[]+")
_CLOSE_RUN = re.compile(r"[}\]]+")
_MIN_CALL_LEN = len('{"name":""}')
_MIN_PYTHONIC_LEN = len("[f()]")
_DEFER_RATIO = 4  # inside an open structure, rescan only once the unscanned text is 1/4 of the window


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
        self._in_string = ""
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
                m = _IN_STRING[self._in_string].search(text, pos)
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
                self._in_string = ""
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
            elif c in "\"'":
                self._in_string = c
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
            self._in_string = ""
            self._consider((top.start, end, top.depth))

    def _abandon_stack(self) -> None:
        """Open brackets turned out not to be JSON: their closed inner spans stand on their own."""
        abandoned = list(self._stack)
        self._stack.clear()  # in place: _scan holds a reference
        self._overflow = 0
        self._in_string = ""
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


class JsonScanner(_BracketScanner):
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

    def settle(self) -> None:
        """A family call starts here: what was open before it was prose (a block is never inside JSON), so
        it is settled first, keeping calls in text order."""
        self._scan(final=True)
        if self._stack or self._overflow:
            self._abandon_stack()
        self._pos = min(self._pos, len(self._text))  # a final escape skip must not eat later text

    def add_unscanned(self, text: str, *, cut: bool) -> None:
        """Content never searched for calls: the text of a family block that was not a (closed) call. What
        is open before it is settled first, as before a call; at a cut-off end of the reply (`cut`) it is
        cut off too, so nothing inside it is a call."""
        if not cut:
            self.settle()
        else:
            self._scan(final=True)
            if self._stack or self._overflow:
                self._stack.clear()
                self._overflow = 0
                self._in_string = ""
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
