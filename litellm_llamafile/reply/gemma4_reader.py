"""Gemma 4's calls, `<|tool_call>call:name{key:<|"|>text<|"|>,n:1,flags:[true],opts:{k:v}}<tool_call|>`:
unquoted (or `<|"|>`-quoted) keys, strings between `<|"|>` marks, bare numbers and literals. Converted
to JSON as it is read, so the arguments stream; a marker inside a `<|"|>` string is text."""

from __future__ import annotations

import re

from .offered import decoded
from .readers import StepReader, TagPattern, expect, json_text, markers, string_piece

QUOTE = '<|"|>'
CLOSER = "<tool_call|>"
MAX_DEPTH = 64  # deeper nesting is never a sane call
_NAME = TagPattern(r"\s*call:([\w.\-]{1,128})\s*\{", "{")
_BARE_KEY = TagPattern(r"\s*([^:{}\[\],<]{1,256}?)\s*:", ":")
_BARE_END = re.compile(r"[,}\]]")
_QUOTES = markers(QUOTE)


class Gemma4Values(StepReader):
    """Gemma 4's argument values written as JSON as they are read: `<|"|>` strings stream, bare words are
    decoded once whole, objects and lists nest (`stack`); the structure's states are Gemma4Reader's."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.stack: list[list[object]] = []  # [kind "{" or "[", members written]
        self.bare: list[str] = []

    def emit(self, text: str) -> None:
        self.sink.call_text(text)

    def _separator(self) -> None:
        top = self.stack[-1]
        if top[1]:
            self.emit(", ")
        top[1] = int(top[1]) + 1  # type: ignore[call-overload]

    def _close(self, c: str, kind: object, pos: int) -> tuple[int, bool]:
        if (c == "}") != (kind == "{"):
            self.fail()
            return pos, False
        self.stack.pop()
        self.keep(c)
        if self.stack:
            self.emit(c)
            self.state = "member"
        else:
            self.complete(c)
            self.state = "closer"
        return pos + 1, False

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if pos == len(text):
            return pos, True
        quoted = expect(text, pos, QUOTE)
        if quoted:
            self.emit('"')
            self.state = "string"
            return self.take(QUOTE, pos)
        if quoted is None and not final:
            return pos, True
        if text[pos] in "{[":
            if len(self.stack) >= MAX_DEPTH:
                self.fail()
                return pos, False
            self.stack.append([text[pos], 0])
            self.emit(text[pos])
            self.state = "member"
            return self.take(text[pos], pos)
        self.state = "bare"
        return pos, False

    def _string(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _QUOTES.search(text, at)
        stop = m.start() if m is not None else (len(text) if final else _QUOTES.held(text, at))
        if stop > at:
            self.keep(text[at:stop])
            self.emit(string_piece(text[at:stop]))
        if m is None:
            return stop, True
        self.emit('"')
        self.state = "member"
        return self.take(QUOTE, m.start())

    def _bare(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _BARE_END.search(text, at)
        stop = m.start() if m is not None else len(text)
        self.bare.append(text[at:stop])
        self.keep(text[at:stop])
        if m is None:
            if sum(len(p) for p in self.bare) > 256:
                self.fail()
                return stop, False
            return stop, True
        word = "".join(self.bare).strip()
        self.bare.clear()
        ok, value = decoded(word)
        self.emit(json_text(value if ok else word) or "null")
        self.state = "member"
        return stop, False


class Gemma4Reader(Gemma4Values):
    """`<|tool_call>call:name{...}<tool_call|>`: the name, then the arguments object, then the closer."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = "name"

    def _name(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _NAME.at(text, at, final, limit=160)
        if isinstance(m, bool):
            return self.wait_or_fail(m, at)
        if m.group(1) not in self.offered:
            self.skip_to(CLOSER)
            return self.take(m.group(), at)
        self.open_call(m.group(1))
        self.stack.append(["{", 0])
        self.emit("{")
        self.state = "member"
        return self.take(m.group(), at)

    def _member(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """In an object: a key, a separator, or its end; in a list: an item, a separator, or its end."""
        pos = self.space(text, at)
        if pos == len(text):
            return pos, True
        kind = self.stack[-1][0]
        c = text[pos]
        if c == ",":
            return self.take(",", pos)
        if c in "}]":
            return self._close(c, kind, pos)
        if kind == "[":
            self._separator()
            self.state = "value"
            return pos, False
        return self._key(text, pos, final)

    def _key(self, text: str, pos: int, final: bool) -> tuple[int, bool]:
        quoted = expect(text, pos, QUOTE)
        if quoted is None and not final:
            return pos, True
        if quoted:
            end = text.find(QUOTE, pos + len(QUOTE), pos + 300)
            colon = text.find(":", end) if end >= 0 else -1
            if end < 0 or colon < 0 or text[end + len(QUOTE) : colon].strip():
                return self._short(text, pos, final)
            key, stop = text[pos + len(QUOTE) : end], colon + 1
        else:
            m = _BARE_KEY.at(text, pos, final, limit=300)
            if isinstance(m, bool):
                return self.wait_or_fail(m, pos)
            key, stop = m.group(1).strip(), pos + m.end()
        self._separator()
        self.emit('"' + string_piece(key) + '": ')
        self.state = "value"
        return self.take(text[pos:stop], pos)

    def _short(self, text: str, pos: int, final: bool) -> tuple[int, bool]:
        return self.wait_or_fail(not final and len(text) - pos < 300, pos)

    def _closer(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        found = expect(text, pos, CLOSER)
        if not found:
            return self.wait_or_fail(found is None, pos)
        self.close_completed()
        self.end()
        return self.take(CLOSER, pos)
