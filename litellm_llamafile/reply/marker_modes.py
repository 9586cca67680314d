"""The modes of the reply scanner's marker pass (parsing.ReplyScanner): the marker sets each mode looks
for and how a marker split across pieces is held back (`find`), prose and what opens next in it
(`TextMode`, with `ProseShape`: a marker inside a quoted string of a bracketed structure is text), and
gpt-oss's message headers (`HarmonyHeader`). Each consumes what it reads of the pending text and says
where it stopped; the scanner acts on what they found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from .families import (
    CALLS_IN_REASONING,
    DROPPED_MARKERS,
    HARMONY_MAX_HEADER,
    HARMONY_MESSAGE,
    HARMONY_OPENERS,
    HARMONY_REASONING_CLOSES,
    HARMONY_WEAK_OPENERS,
    REASONING,
    families_by_marker,
)
from .offered import Offered
from .readers import Markers

MarkerSet = tuple[Markers, dict[str, tuple[str, ...]]]

BLOCKS = families_by_marker()
THINK_CLOSES = tuple(
    sorted({c for closes in REASONING.values() for c in closes} | set(HARMONY_REASONING_CLOSES))
)


@lru_cache(maxsize=32)
def marker_set(markers: tuple[str, ...]) -> MarkerSet:
    """A marker set, and for each marker the longer ones it starts (which may still arrive)."""
    extended = {m: tuple(x for x in markers if x != m and x.startswith(m)) for m in markers}
    return Markers(markers), extended


def reasoning_markers(closes: tuple[str, ...], calls: bool) -> MarkerSet:
    """What ends a think block: its closers, and where the reference allows it, a call's opener."""
    return marker_set(tuple(dict.fromkeys((*closes, *CALLS_IN_REASONING) if calls else closes)))


def find(sets: MarkerSet, pending: str, at: int, final: bool) -> tuple[re.Match[str] | None, int]:
    """The next marker of `sets` (None if none yet), and where the text before it ends: a marker a longer
    one may still extend, or a tail that may start one, is held back unless `final`."""
    markers, extended = sets
    m = markers.search(pending, at)
    if m is not None and not final and _may_grow(extended[m.group()], pending, m.start()):
        return None, m.start()
    if m is not None:
        return m, m.start()
    return None, len(pending) if final else markers.held(pending, at)


def _may_grow(longer: tuple[str, ...], text: str, start: int) -> bool:
    """A longer marker that starts with the one found at `start` may still arrive: only near the end."""
    remaining = len(text) - start
    return any(remaining < len(m) and m.startswith(text[start:]) for m in longer)


_STRUCTURE = "{}[]\"'"
_STRING_END = {q: re.compile(r"[\\\n" + q + "]") for q in "\"'"}
_TEXT = marker_set(tuple(dict.fromkeys((*BLOCKS, *REASONING, *HARMONY_OPENERS, *DROPPED_MARKERS))))
_PROSE = re.compile(_TEXT[0].pattern.pattern + "|[{}\\[\\]\"']")  # markers win where both start


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


class TextMode:
    """Prose, sent on as it is read (to the JSON scanner), up to what opens next: a marker, or where a
    JSON or pythonic call is read from its first character (`implicit`: a forced reply's top level, or
    the start of an `auto` reply, Llama 3.x's and Llama 4's native forms)."""

    def __init__(self, prose: Callable[[str], None], offered: Offered, *, forced: bool) -> None:
        self._send = prose
        self.offered = offered
        self.forced = forced
        self.shape = ProseShape()
        self.started = False  # non-space prose was read: a call no longer opens the reply
        self.declined = False  # the call read from the next bracket ended at once: it is prose

    def step(self, pending: str, at: int, final: bool) -> tuple[int, bool, str]:
        """(where it stopped, whether the pass goes on, what it found: a marker, "json" or "pythonic"
        for an implicit call read from `position`, or "")."""
        shape = self.shape
        if shape.quote:
            stop = shape.string(pending, at, final)
            self.prose(pending[at:stop])
            return stop, stop < len(pending) or (final and not shape.quote), ""
        s = _PROSE.search(pending, at)
        if s is not None and s.group() in _STRUCTURE:
            held = len(pending) if final else _TEXT[0].held(pending, at)
            if s.start() >= held:  # it may be inside a marker still arriving (`role="assistant"`): wait
                self.prose(pending[at:held])
                return held, False, ""
            self.prose(pending[at : s.start()])
            bracket = s.group() in "{[" and not self.declined
            self.declined = False
            opens = opens_call(pending, s.start(), final, self.offered) if bracket and self.implicit() else ""
            if opens is None:
                return s.start(), False, ""
            if opens:
                return s.start(), True, opens
            self.prose(s.group())
            shape.see(s.group())
            return s.end(), True, ""
        m, stop = find(_TEXT, pending, at, final)
        self.prose(pending[at:stop])
        if m is None:
            return stop, False, ""
        return m.end(), True, m.group()

    def implicit(self) -> bool:
        return bool(self.offered) and self.shape.depth == 0 and (self.forced or not self.started)

    def prose(self, text: str) -> None:
        if text:
            self.started = self.started or not text.isspace()
            self._send(text)


def opens_call(text: str, at: int, final: bool, offered: Offered) -> str | None:
    """What the bracket at `at` opens: "json" (an object, or a list of objects), "pythonic" (a list whose
    first item calls an offered tool, `[f(`), "" for anything else (left to the JSON scanner); None
    until that is known."""
    if text[at] == "{":
        return "json"
    if text[at] != "[":
        return ""
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


class HarmonyHeader:
    """A gpt-oss message header (`<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json`)
    read up to `<|message|>`, which says what the message is (see families.harmony_kind). One that never
    gets there was a stray token (dropped, with what was read of it when the reply ends) or, past the
    header cap or from the weak opener `to=functions.`, prose (kept)."""

    def __init__(self, opener: str) -> None:
        self.opener = opener
        self.searched = 0

    def step(self, pending: str, at: int, final: bool) -> tuple[int, bool, str | None, str]:
        """(where it stopped, whether the pass goes on, the header when it ended, text to keep as prose)."""
        start = max(at, at + self.searched - len(HARMONY_MESSAGE) + 1)
        i = pending.find(HARMONY_MESSAGE, start, at + HARMONY_MAX_HEADER + len(HARMONY_MESSAGE))
        if i >= 0:
            return i + len(HARMONY_MESSAGE), True, self.opener + pending[at:i], ""
        if len(pending) - at > HARMONY_MAX_HEADER or (final and self.opener in HARMONY_WEAK_OPENERS):
            return at, True, "", self.opener if self.opener in HARMONY_WEAK_OPENERS else ""
        if final:
            return len(pending), True, "", ""  # a header cut off by the end: nothing of it is content
        self.searched = len(pending) - at
        return at, False, None, ""


class ReasoningMode:
    """A think block: its text is reasoning up to a closer, or, where the reference allows it, up to a
    call's opener (which ends the block and opens the call)."""

    def __init__(self, reasoning: Callable[[str], None], closes: tuple[str, ...], *, calls: bool) -> None:
        self._send = reasoning
        self.closes = closes
        self._markers = reasoning_markers(closes, calls)
        self.markers_of_closers = marker_set(tuple(closes))  # what ends it, call openers aside

    def step(self, pending: str, at: int, final: bool) -> tuple[int, bool, str]:
        """(where it stopped, whether the pass goes on, what ended the block: a closer or an opener)."""
        m, stop = find(self._markers, pending, at, final)
        if stop > at:
            self._send(pending[at:stop])
        if m is None:
            return stop, False, ""
        return m.end(), True, m.group()


class EchoedOpener:
    """A constrained reply's start, which llama-server (`reasoning_format: none`) begins with the think
    opener the prompt ended with: held until it is ruled in (dropped) or out (kept)."""

    def __init__(self) -> None:
        self.lead: str | None = ""

    def past(self, chunk: str, *, final: bool) -> str:
        """The reply's start without the echoed opener; "" while the start could still be one."""
        lead = (self.lead or "") + chunk
        start = lead.lstrip()
        opener = next((o for o in REASONING if start.startswith(o)), None)
        if opener is None and not final and (not start or any(o.startswith(start) for o in REASONING)):
            self.lead = lead
            return ""
        self.lead = None
        return start[len(opener) :] if opener is not None else lead
