"""Pythonic calls (Llama 4 `[f(a=1), g()]`, Gemma 3 ```tool_code with one call per line, Llama 3's built-in
`tool.call(q="x")`), converted to JSON as they are read: a call is certain once `name(` names an offered
tool, its string arguments stream as JSON strings (escapes decoded as Python reads them), any other value
(a number, `True`, `None`, a list or dict) is decoded once it ends. The calls close with the list's `]`
(or, unlisted, with the block's closer); a marker inside a string is text.
"""

from __future__ import annotations

import ast
import re

from .readers import ArgsWriter, StepReader, TagPattern, json_text, markers, skip_space

_CALL = TagPattern(r"([A-Za-z_][\w.\-]{0,127}?)(?:\.call)?\s*\(", "(")
_KEY = re.compile(r"([A-Za-z_]\w{0,127})\s*=")
_NAME_SO_FAR = re.compile(r"[A-Za-z_][\w.\-]{0,127}\s*")
_STRING_START = re.compile(r"""([rRuU]?)('''|\"\"\"|'|")""")
_ESCAPE = re.compile(
    r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}\n]{1,100}\}|[0-7]{1,3}|[\s\S])"
)
_LITERAL_STOP = re.compile(r"""[,)\]}\[({'"\\]""")
_STRING_STOP = {
    q: re.compile(re.escape(q) + r"|\\" + ("" if len(q) == 3 else r"|\n")) for q in ("'", '"', "'''", '"""')
}
_ESCAPE_LENGTH = {"x": 4, "u": 6, "U": 10}  # a complete \x.., \u...., \U........
MAX_LITERAL = 100_000  # a held (non-string) value longer than this is not a call's argument


class PythonValues(StepReader):
    """The value of a pythonic keyword argument, written as JSON as it is read (the `value` state; the
    call's structure returns to `argument`): a string streams, any other literal is decoded once whole."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.writer = ArgsWriter(self)
        self.quote = ""  # the string being read: its quote
        self.raw = False  # ... and whether it is a raw string
        self.held: list[str] = []  # a non-string value being read
        self.held_chars = 0
        self.depth = 0
        self.inner_quote = ""  # a string inside a held value

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if len(text) - pos < 4 and not final:
            return pos, True  # a string's prefix and triple quote may still be arriving
        m = _STRING_START.match(text, pos)
        if m is not None:
            self.quote, self.raw = m.group(2), m.group(1) in ("r", "R")
            self.writer.quote()
            self.state = "string"
            return self.take(m.group(), pos)
        self.held, self.held_chars, self.depth, self.inner_quote = [], 0, 0, ""
        self.state = "literal"
        return pos, False

    def _string(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """A string argument, streamed: text up to a backslash or the closing quote."""
        quote = self.quote
        pos = at
        while True:
            m = _STRING_STOP[quote].search(text, pos)
            end = m.start() if m is not None else len(text)
            if m is None and not final:
                end = max(pos, len(text) - (len(quote) - 1))  # a closing triple quote may be arriving
            self._emit(text[pos:end])
            pos = end
            if m is None:
                return pos, True
            if m.group() == "\n":  # a one-line string never holds a raw newline
                self.fail()
                return pos, False
            if m.group() == "\\":
                escape = _escape_at(text, pos, final)
                if escape is None:
                    return pos, True
                self.keep(escape)
                self.writer.text(escape if self.raw else _decoded(escape))
                pos += len(escape)
                continue
            self.keep(quote)
            self.state = "string_end"
            return pos + len(quote), False

    def _emit(self, piece: str) -> None:
        if piece:
            self.keep(piece)
            self.writer.text(piece)

    def _string_end(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """After a string: another string right after it continues it (Python joins them), else it ended."""
        pos = skip_space(text, at)
        if pos == len(text) and not final:
            return at, True
        m = _STRING_START.match(text, pos)
        if m is not None and pos + len(m.group()) <= len(text):
            self.keep(text[at : pos + len(m.group())])
            self.quote, self.raw = m.group(2), m.group(1) in ("r", "R")
            self.state = "string"
            return pos + len(m.group()), False
        self.writer.quote()
        self.state = "argument"
        return at, False

    def _literal(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """A non-string value, held until it ends (a `,` or `)` outside brackets and strings), then
        decoded as Python reads it."""
        pos = at
        while True:
            if self.held_chars > MAX_LITERAL:
                self.fail()
                return pos, False
            m = _LITERAL_STOP.search(text, pos)
            if m is None:
                self._hold(text[pos:])
                return len(text), True
            c = m.group()
            if self.inner_quote:
                if c == "\\" and m.end() == len(text) and not final:
                    self._hold(text[pos : m.start()])
                    return m.start(), True  # the escaped character is still to come
                if c == self.inner_quote:
                    self.inner_quote = ""
                advance = 2 if c == "\\" else 1
                self._hold(text[pos : m.start() + advance])
                pos = m.start() + advance
                continue
            if c in ",)]}" and self.depth == 0:
                self._hold(text[pos : m.start()])
                return self._decode_held(m.start())
            self.depth += 1 if c in "[({" else -1 if c in ")]}" else 0
            self.inner_quote = c if c in "'\"" else ""
            self._hold(text[pos : m.end()])
            pos = m.end()

    def _hold(self, piece: str) -> None:
        self.held.append(piece)
        self.keep(piece)
        self.held_chars += len(piece)

    def _decode_held(self, pos: int) -> tuple[int, bool]:
        source = "".join(self.held).strip()
        value: object = ValueError
        if len(source) <= MAX_LITERAL:
            try:
                value = ast.literal_eval(source)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                value = ValueError
        value = list(value) if isinstance(value, tuple) else value
        if value is ValueError or json_text(value) is None:  # not a literal, or no JSON value (a set)
            self.fail()
            return pos, False
        self.writer.value(value)
        self.state = "argument"
        return pos, False


class PythonicReader(PythonValues):
    """`closers`: what ends the block (`<|python_end|>`, the fence's ```, `<|eom_id|>`); `optional`: the
    closer is an end-of-generation token the server may not send, so the end of the reply closes the
    block (unless it was cut off)."""

    def __init__(
        self, *args: object, closers: tuple[str, ...] = (), optional: bool = False, **kwargs: object
    ):
        super().__init__(*args, **kwargs)
        self.closers = markers(*closers) if closers else None
        self.optional = optional
        self.listed = False  # the calls are in a `[...]` list
        self.state = "start"

    def _start(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if pos == len(text):
            return pos, True
        if text[pos] == "[":
            self.listed = True
            pos = self.take("[", pos)[0]
        self.state = "call"
        return pos, False

    def _call(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        m = _CALL.at(text, pos, final, limit=160)
        if isinstance(m, bool) or m.group(1) not in self.offered:
            return self.wait_or_fail(m is True, pos)
        self.open_call(m.group(1))
        self.writer = ArgsWriter(self)
        self.state = "argument"
        return self.take(m.group(), pos)

    def _argument(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if pos == len(text):
            return pos, True
        if text[pos] == ")":
            self.writer.close()
            self.state = "after_call"
            return self.take(")", pos)
        if text[pos] == ",":
            return self.take(",", pos)
        m = _KEY.match(text, pos, pos + 140)
        if m is None:
            if len(text) - pos < 140 and re.fullmatch(r"[A-Za-z_]\w*\s*", text[pos:]):
                return pos, True
            self.fail()
            return pos, False
        self.writer.key(m.group(1))
        self.state = "value"
        return self.take(m.group(), pos)

    def _after_call(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if pos == len(text):
            if final and not self.listed:
                return self._closer(text, pos, final)
            return pos, True
        if self.listed and text[pos] == ",":
            self.state = "call"
            return self.take(",", pos)
        if self.listed and text[pos] == "]":
            self.listed = False
            self.state = "closer"
            return self.take("]", pos)
        if not self.listed and _CALL.pattern.match(text, pos) is not None:  # one call per line
            self.state = "call"
            return pos, False
        if not self.listed and not final and _NAME_SO_FAR.fullmatch(text, pos, pos + 160):
            return pos, True  # the next call's name may still be arriving
        if self.listed:
            self.fail()
            return pos, False
        self.state = "closer"
        return pos, False

    def _closer(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """After the calls: the block's closer confirms them; a bare list (no closer) or an
        end-of-generation closer the server drops (`optional`) needs none."""
        if self.closers is None:
            self.end()
            return at, False
        pos = self.space(text, at)
        closer = next((c for c in self.closers.markers if text.startswith(c, pos)), None)
        if closer is not None:
            self.keep(closer)
            self.end()
            return pos + len(closer), False
        rest = text[pos : pos + self.closers.longest]
        partial = pos + len(rest) == len(text) and any(c.startswith(rest) for c in self.closers.markers)
        if pos == len(text) or partial:
            if not final:
                return pos, True
            if self.optional and not self.truncated and pos == len(text):
                self.end()
                return pos, False
            self.fail(cut=True)
            return len(text), False
        if self.optional:  # other text: the closer was the server's to drop
            self.end()
            return at, False
        self.fail()
        return pos, False


def _escape_at(text: str, pos: int, final: bool) -> str | None:
    """The backslash escape at `pos`, or None while it may still be arriving."""
    kind = text[pos + 1 : pos + 2]
    if not final:
        short = len(text) - pos < _ESCAPE_LENGTH.get(kind, 2)
        unnamed = kind == "N" and "}" not in text[pos : pos + 104]
        octal = kind in "01234567" and kind != "" and len(text) - pos < 4 and text[pos + 1 :].isdigit()
        if short or unnamed or octal:
            return None
    m = _ESCAPE.match(text, pos)
    return m.group() if m is not None else text[pos : pos + 2]


def _decoded(escape: str) -> str:
    """One backslash escape as Python decodes it (an unknown one keeps its backslash)."""
    if len(escape) < 2:
        return escape
    if escape[1] == "\n":
        return ""  # a line continuation
    if escape[1] not in "\\'\"abfnrtv01234567xuUN":
        return escape
    try:
        value = ast.literal_eval('"' + escape + '"')
    except (ValueError, SyntaxError):
        return escape
    return value if isinstance(value, str) else escape
