"""What every family block reader shares: the sink it reports to, the base class, marker search with a
held tail, the JSON span tracker and the writer of argument JSON.

A reader reads one family block (what follows an opening marker such as `<tool_call>`) as the text
arrives, and reports to its `Sink`: a call becomes certain (`open_call`, once the family's opener and an
offered tool's name are read), its arguments as JSON text in fragments (`call_text`), its end
(`close_call`, with the arguments' last character, held back so that a call that never closes never has
valid arguments), prose met inside the block, and the text that was not a call after all (`give_back`).
The stream and the one-shot parse both run the readers, so both report the same fragments.

Readers consume all the text they are given except a tail that may start a marker (bounded by the
longest marker), so a block costs time linear in its length however it is split.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Protocol

from .offered import Offered, Types, holds_text, typed_value


class Sink(Protocol):
    def open_call(self, name: str) -> int: ...

    def call_text(self, text: str) -> None: ...

    def close_call(self, index: int, tail: str) -> None: ...

    def prose(self, text: str) -> None: ...

    def give_back(self, text: str, *, cut: bool) -> None: ...


class Reader:
    """One family block being read. `read` consumes `text[at:]` and returns where the marker pass
    resumes; `done` says the block ended there. At `final` (the end of the reply) a reader always ends.

    A call goes through three steps: announced (`open_call`), complete (`complete`: its own syntax
    closed, its last character held), closed (`close_completed`: the family's closer confirmed it, or
    the family has none). Text that turns out not to be a call, and every call not closed by then, is
    given back (`fail`): a call left open by the end of the reply is never a call."""

    def __init__(self, sink: Sink, offered: Offered, opener: str, *, weak: bool, strip: tuple[str, ...]):
        self.sink = sink
        self.offered = offered
        self.weak = weak  # the opener is also prose: text given back keeps its markers
        self.strip = strip  # markers removed from text given back by a strong family
        self.done = False
        self.truncated = False  # the reply was cut off by max_tokens (set before the final read)
        self.scan_given_back = False  # text given back is prose JSON to look at again (a bare JSON value)
        self.calls = 0  # calls closed in this block
        self._opened: list[int] = []  # announced, not closed yet
        self._complete: list[tuple[int, str]] = []  # complete, waiting for the closer: (index, held tail)
        self._prose: list[str] = []  # prose met inside the block, sent on with the closer
        self._raw: list[str] = [opener]  # text since the last settled point, given back if it fails

    def read(self, text: str, at: int, final: bool) -> int:
        raise NotImplementedError

    def forget_opener(self) -> None:
        """The opener was the prompt's (Functionary's `>>>`): text given back never includes it."""
        if self._raw:
            self._raw[0] = ""

    @property
    def open(self) -> bool:
        return bool(self._opened)

    def keep(self, text: str) -> None:
        """Text consumed since the last settled point."""
        if text:
            self._raw.append(text)

    def open_call(self, name: str) -> None:
        self._opened.append(self.sink.open_call(name))

    def complete(self, tail: str) -> None:
        """The latest announced call's own syntax closed; `tail` is its arguments' last character."""
        self._complete.append((self._opened[-1], tail))

    def hold_prose(self, text: str) -> None:
        if text:
            self._prose.append(text)
            self.keep(text)

    def close_completed(self) -> None:
        """The family's closer (or the end of a family without one): complete calls are calls."""
        prose = "".join(self._prose)
        self._prose.clear()
        if prose.strip():  # whitespace around the calls inside a block is the template's layout
            self.sink.prose(prose)
        for index, tail in self._complete:
            self.sink.close_call(index, tail)
        self.calls += len(self._complete)
        self._complete.clear()
        self._opened.clear()
        self._raw.clear()

    def fail(self, *, cut: bool = False) -> None:
        """The text since the last settled point was not a call (or not a closed one): give it back and
        end the block."""
        raw = "".join(self._raw)
        if not self.weak:
            raw = without(raw, self.strip)
        self._raw.clear()
        self._prose.clear()
        self._opened.clear()
        self._complete.clear()
        self.done = True
        self.sink.give_back(raw, cut=cut)

    def end(self) -> None:
        """The block ended after closed calls (or prose only)."""
        self.close_completed()
        self.done = True


class StepReader(Reader):
    """A reader written as states: `self.state` names a step method `_<state>(text, at, final)`, which
    consumes (and keeps) what it reads and returns (position, wait)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.state = "start"

    def read(self, text: str, at: int, final: bool) -> int:
        while not self.done:
            at, wait = getattr(self, "_" + self.state)(text, at, final)
            if wait:
                if not final:
                    return at
                self.keep(text[at:])
                self.fail(cut=True)
                return len(text)
        return at

    def space(self, text: str, at: int) -> int:
        pos = skip_space(text, at)
        self.keep(text[at:pos])
        return pos

    def skip_to(self, *closers: str) -> None:
        """The block calls no offered tool: read up to its closer, then give all of it back (its special
        tokens stripped), so no marker of it reaches content."""
        self._skip_markers = markers(*closers)
        self.state = "skip"

    def _skip(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = self._skip_markers.search(text, at)
        if m is None:
            stop = len(text) if final else self._skip_markers.held(text, at)
            self.keep(text[at:stop])
            return stop, True
        self.keep(text[at : m.end()])
        self.fail()
        return m.end(), False

    def take(self, marker: str, pos: int) -> tuple[int, bool]:
        self.keep(marker)
        return pos + len(marker), False

    def wait_or_fail(self, wait: bool, pos: int) -> tuple[int, bool]:
        """A step whose text at `pos` is not (yet) what it reads: wait for more while it may still become
        that, else the call fails."""
        if not wait:
            self.fail()
        return pos, wait


def without(text: str, markers: Iterable[str]) -> str:
    for marker in sorted(set(markers), key=len, reverse=True):
        if marker:
            text = text.replace(marker, "")
    return text


# -- finding markers ---------------------------------------------------------------------------------


def alternation(markers: Iterable[str]) -> re.Pattern[str]:
    """One pattern for several markers; longest first, so at one position the longest wins."""
    return re.compile("|".join(re.escape(m) for m in sorted(set(markers), key=len, reverse=True)))


class Markers:
    """A set of markers searched together, with the longest tail of a text that may start one. Build them
    with `markers()`, which compiles each set once."""

    def __init__(self, markers: Iterable[str]) -> None:
        self.markers = tuple(sorted(set(markers), key=len, reverse=True))
        self.pattern = alternation(self.markers)
        # The markers' proper prefixes, and by their last character the lengths to try, longest first:
        # `held` slices only where a prefix could end (a regex anchored at the end tried every prefix at
        # every position of the window, 60 us a call).
        self._prefixes = frozenset(m[:k] for m in self.markers for k in range(1, len(m)))
        lengths: dict[str, set[int]] = {}
        for prefix in self._prefixes:
            lengths.setdefault(prefix[-1], set()).add(len(prefix))
        self._lengths_ending = {c: sorted(ls, reverse=True) for c, ls in lengths.items()}
        self.longest = max((len(m) for m in self.markers), default=1)

    def search(self, text: str, at: int, end: int | None = None) -> re.Match[str] | None:
        return self.pattern.search(text, at, len(text) if end is None else end)

    def held(self, text: str, at: int, end: int | None = None) -> int:
        """Where the tail of `text[at:end]` that may start a marker begins (`end` if none)."""
        end = len(text) if end is None else end
        if end <= at:
            return end
        for length in self._lengths_ending.get(text[end - 1], ()):
            if length <= end - at and text[end - length : end] in self._prefixes:
                return end - length
        return end


@lru_cache(maxsize=256)
def _markers_of(markers: tuple[str, ...]) -> Markers:
    return Markers(markers)


def markers(*found: str) -> Markers:
    """The marker set of these markers, compiled once per set."""
    return _markers_of(tuple(sorted(set(found))))


WHITESPACE = re.compile(r"\s*")


def skip_space(text: str, at: int) -> int:
    m = WHITESPACE.match(text, at)
    return m.end() if m is not None else at


# -- JSON spans ----------------------------------------------------------------------------------------

_STRUCTURE = re.compile(r'[{}\[\]"]')
_IN_STRING = re.compile(r'["\\]')


class JsonSpan:
    """Where a bracketed JSON value ends, fed in pieces: strings and escapes are followed, so brackets and
    markers inside strings are text. Only counts; whether the text is valid JSON is checked once at the
    end by whoever needs it. `depth` > 0 starts it inside a structure already opened."""

    __slots__ = ("depth", "done", "escaped", "in_string")

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.in_string = False
        self.escaped = False
        self.done = False

    def advance(self, text: str, at: int, end: int | None = None) -> int:
        """Consume `text[at:end]`: the position just past the value when it ends there, else `end`."""
        end = len(text) if end is None else end
        pos = at
        while pos < end:
            if self.escaped:
                self.escaped = False
                pos += 1
            elif self.in_string:
                m = _IN_STRING.search(text, pos, end)
                if m is None:
                    return end
                pos = m.end()
                if m.group() == "\\":
                    self.escaped = True
                else:
                    self.in_string = False
            else:
                m = _STRUCTURE.search(text, pos, end)
                if m is None:
                    return end
                pos = m.end()
                c = m.group()
                if c == '"':
                    self.in_string = True
                elif c in "{[":
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth <= 0:
                        self.done = True
                        return pos
        return end


# -- writing arguments ---------------------------------------------------------------------------------


def json_text(value: object) -> str | None:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None


def string_piece(text: str) -> str:
    """`text` escaped as the inside of a JSON string; pieces escaped apart join into the whole escaped."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


class ArgsWriter:
    """Writes a call's arguments object key by key as the values arrive: `{"k": "v", "n": 1}`, the same
    text `json.dumps` gives. A string value streams as it is read; another is written once decoded."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.count = 0

    def key(self, key: str) -> None:
        self.reader.sink.call_text(
            ("{" if self.count == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": "
        )
        self.count += 1

    def text(self, piece: str) -> None:
        if piece:
            self.reader.sink.call_text(string_piece(piece))

    def quote(self) -> None:
        self.reader.sink.call_text('"')

    def value(self, value: object) -> None:
        self.reader.sink.call_text(json_text(value) or "null")

    def close(self) -> None:
        """The arguments are complete; the closing brace waits for the call to close."""
        if self.count == 0:
            self.reader.sink.call_text("{")
        self.reader.complete("}")


class TagValue:
    """A parameter value written as tag text, read as it arrives: streamed as a JSON string when the schema
    says it is only text, else collected and typed once it ends. `lead`/`trail`: one newline the family's
    template writes after the opening tag and before the closing one (Qwen3-Coder), not part of the value."""

    def __init__(self, writer: ArgsWriter, types: Types | None, *, untyped: str, newlines: bool = False):
        self.writer = writer
        self.types = types
        self.untyped = untyped
        self.streams = holds_text(types, untyped=untyped)
        self.newlines = newlines
        self._started = False  # the first character was seen (a leading newline dropped)
        self._held_newline = False
        self._parts: list[str] = []
        if self.streams:
            writer.quote()

    def add(self, piece: str) -> None:
        if not piece:
            return
        if self.newlines and not self._started:
            piece = piece[1:] if piece.startswith("\n") else piece
        self._started = True
        if not piece:
            return
        if self._held_newline:
            piece = "\n" + piece
            self._held_newline = False
        if self.newlines and piece.endswith("\n"):
            piece = piece[:-1]
            self._held_newline = True
        if self.streams:
            self.writer.text(piece)
        else:
            self._parts.append(piece)

    def finish(self) -> None:
        """The value ended: a held trailing newline is dropped (it was the template's)."""
        if self.streams:
            self.writer.quote()
        else:
            self.writer.value(typed_value("".join(self._parts), self.types, untyped=self.untyped))


# -- small pieces of grammar -------------------------------------------------------------------------


def expect(text: str, at: int, marker: str) -> bool | None:
    """Whether `marker` is at `at`: True, False, or None while the text so far is a prefix of it."""
    chunk = text[at : at + len(marker)]
    if chunk == marker:
        return True
    return None if marker.startswith(chunk) else False


class TagPattern:
    """A tag head pattern and the text that ends every head (`>`, `<|sep|>`; several: any of them). The
    pattern's variable parts must not admit the closer, so that a window holding the closer and no match
    can never become one: the decision is the same however the text is split."""

    def __init__(self, regex: str, *closers: str) -> None:
        self.pattern = re.compile(regex, re.DOTALL)
        self.closers = closers

    def at(self, text: str, at: int, final: bool, limit: int = 512) -> re.Match[str] | bool:
        """The head's match at `at`; True while it may still complete (at the end of the reply that means
        it was cut off, which the reader's loop handles); False when it cannot be one."""
        window = text[at : at + limit]
        m = self.pattern.match(window)
        if m is not None:
            return m
        return len(window) < limit and not any(c in window for c in self.closers)
