"""Pythonic calls (Llama 4 `[f(a=1), g()]`, Gemma 3 ```tool_code, Llama 3's built-in `tool.call(q="x")`):
read up to the block's closer, past quoted strings (a closer inside a string is text), and parsed once
closed. They are held until then: a Python literal is only known to be a whole call when it closes."""

from __future__ import annotations

import re
from functools import lru_cache

from .call_shapes import Call, pythonic_calls
from .readers import StepReader, alternation, markers


def pythonic_block(body: str, names: frozenset[str]) -> list[Call] | None:
    """A list or call expression, or one call per line."""
    calls = pythonic_calls(body, names)
    if calls:
        return calls
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    found: list[Call] = []
    for line in lines:
        per_line = pythonic_calls(line, names)
        if not per_line:
            return None
        found.extend(per_line)
    return found


_IN_QUOTE = {q: re.compile(r"[\\" + q + "]") for q in "'\""}


@lru_cache(maxsize=16)
def _outside(closers: tuple[str, ...]) -> re.Pattern[str]:
    """Outside a string: a quote that opens one, or a closer."""
    return re.compile("['\"]|" + alternation(closers).pattern)


class PythonicReader(StepReader):
    """The block's text up to a closer outside quotes; `optional`: the closer is an end-of-generation
    token the server may not send, so the end of the reply closes the block (unless it was cut off)."""

    def __init__(
        self, *args: object, closers: tuple[str, ...] = (), optional: bool = False, **kwargs: object
    ):
        super().__init__(*args, **kwargs)
        self.closers = markers(*closers)
        self._outside = _outside(closers)
        self.optional = optional
        self.quote = ""
        self.escaped = False
        self.body: list[str] = []
        self.state = "body"

    def _body(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = at
        while pos < len(text):
            if self.escaped:
                self.escaped = False
                pos += 1
                continue
            if self.quote:
                m = _IN_QUOTE[self.quote].search(text, pos)
                if m is None:
                    pos = len(text)
                    break
                pos = m.end()
                if m.group() == "\\":
                    self.escaped = True
                else:
                    self.quote = ""
                continue
            m = self._outside.search(text, pos)
            if m is None:
                pos = len(text) if final else self.closers.held(text, pos)
                break
            if m.group() in "'\"":
                self.quote = m.group()
                pos = m.end()
                continue
            self._piece(text[at : m.start()])
            self.keep(m.group())
            self._parse(cut=False)
            return m.end(), False
        self._piece(text[at:pos])
        if final and self.optional and not self.truncated:
            self._parse(cut=True)
            return pos, False
        return pos, True

    def _piece(self, piece: str) -> None:
        self.body.append(piece)
        self.keep(piece)

    def _parse(self, *, cut: bool) -> None:
        calls = pythonic_block("".join(self.body), self.offered.names)
        if not calls:
            self.fail(cut=cut)
            return
        for name, arguments in calls:
            self.open_call(name)
            self.sink.call_text(arguments[:-1])
            self.complete(arguments[-1])
        self.end()
