"""JSON calls inside family blocks, read as they arrive.

`JsonCalls` reads one JSON value that should be a call object or a list of them (Hermes/Qwen/Granite 4
`<tool_call>`, Granite 3 `<|tool_call|>`, Mistral v3, Llama 3 `<|python_tag|>`, Command-R, and the
constrained forced call). The shapes every template writes, `{"name": "f", "arguments": {...}}` and its key
spellings, take the fast path: the call is certain once the name of an offered tool is read, and its
arguments stream as the model writes them (the raw JSON text, checked once it closes). Any other shape
(keys in another order, OpenAI's nested `function`, arguments as a JSON string, `{"tool_calls": [...]}`)
is held until the value closes and read whole. `JsonArgs` is the arguments object alone, for the
families that write the name outside the JSON (Mistral v11, DeepSeek, Kimi K2, gpt-oss, Functionary).
"""

from __future__ import annotations

import re

from .call_shapes import ALLOWED_KEYS, ARGUMENT_KEYS, NAME_KEYS, calls_in_json
from .offered import json_value
from .readers import JsonSpan, Reader, skip_space

_LEAD_KEYS = "type|id|tool_call_id|index"
_PREFIX = re.compile(
    r'\{\s*(?:"(?:' + _LEAD_KEYS + r')"\s*:\s*(?:"[^"\\]{0,64}"|\d{1,9})\s*,\s*){0,3}'
    r'"(?:name|tool|tool_name|function)"\s*:\s*"([^"\\]{1,128})"\s*,\s*'
    r'"(?:arguments|parameters|args|input|tool_input)"\s*:\s*(?=\{)'
)
_FIRST_KEY = re.compile(r'\{\s*"([^"\\]{0,40})"\s*:')
_CALL_KEYS = frozenset({*NAME_KEYS, *ALLOWED_KEYS, "tool_calls"})
HEAD_LIMIT = 512  # the fast path's prefix is read within this many characters, or never


class JsonArgs:
    """An arguments object `{...}` streamed as it is read: everything but its closing brace, which waits
    for the call to close. `ok` once it closed as valid JSON."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.span = JsonSpan()
        self.parts: list[str] = []
        self.done = False
        self.ok = False

    def feed(self, text: str, at: int, end: int | None = None) -> int:
        stop = self.span.advance(text, at, end)
        piece = text[at:stop]
        self.parts.append(piece)
        if self.span.done:
            self.done = True
            ok, value = json_value("".join(self.parts))
            self.ok = ok and isinstance(value, dict)
            piece = piece[:-1]
        if piece:
            self.reader.sink.call_text(piece)
        return stop

    def step(self, text: str, at: int) -> tuple[int, bool | None]:
        """`feed` as a reader's step, keeping what it read: (end, True) while the object arrives, (end,
        False) once it is not a JSON object (the call failed), (end, None) once the call is complete."""
        end = self.feed(text, at)
        self.reader.keep(text[at:end])
        if not self.done:
            return end, True
        if not self.ok:
            self.reader.fail()
            return end, False
        self.reader.complete("}")
        return end, None


class _Object:
    """One JSON object that may be a call: the fast path (see the module) or held whole."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.span = JsonSpan()
        self.raw: list[str] = []
        self.head = ""
        self.state = "head"  # head | args | rest | whole
        self.args: JsonArgs | None = None
        self.name = ""
        self.done = False
        self.ok = False

    def feed(self, text: str, at: int) -> int:
        end = self.span.advance(text, at)
        piece = text[at:end]
        self.raw.append(piece)
        if self.state == "head":
            self._head(piece)
        elif self.state == "args":
            self._args(piece, 0)
        if self.span.done:
            self._finish()
        return end

    def _head(self, piece: str) -> None:
        self.head += piece
        m = _PREFIX.match(self.head)
        if m is not None and m.group(1) in self.reader.offered:
            self.name = m.group(1)
            self.reader.open_call(self.name)
            self.state = "args"
            self.args = JsonArgs(self.reader)
            self._args(self.head, m.end())
            self.head = ""
            return
        first = _FIRST_KEY.match(self.head)
        if (
            (first is not None and first.group(1) not in _CALL_KEYS)
            or len(self.head) >= HEAD_LIMIT
            or self.span.done
        ):
            self.state = "whole"
            self.head = ""

    def _args(self, text: str, at: int) -> None:
        assert self.args is not None
        if not self.args.done:
            self.args.feed(text, at)
        if self.args.done:
            self.state = "rest"

    def _finish(self) -> None:
        self.done = True
        ok, value = json_value("".join(self.raw))
        if self.state == "whole":
            calls = calls_in_json(value, self.reader.offered.names) if ok else None
            for name, arguments in calls or ():
                self.reader.open_call(name)
                self.reader.sink.call_text(arguments[:-1])
                self.reader.complete(arguments[-1])
            self.ok = bool(calls)
            return
        self.ok = bool(ok and self.args is not None and self.args.ok and _one_call(value, self.name))
        if self.ok:
            self.reader.complete("}")


def _one_call(value: object, name: str) -> bool:
    """The fast path's object checked whole: only call keys, and the name it was announced with."""
    if not isinstance(value, dict) or not set(value) <= ALLOWED_KEYS:
        return False
    named = [value[k] for k in NAME_KEYS if k in value]
    return named == [name] and sum(k in value for k in ARGUMENT_KEYS) == 1


class JsonCalls:
    """A JSON call object, or a list of them, starting at the next non-space character. `done` when the
    value ended (or turned out not to be calls: `failed`, the reader then gives the text back)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.state = "start"  # start | object | list | item | skip
        self.item: _Object | None = None
        self.list_span: JsonSpan | None = None
        self.done = False
        self.failed = False
        self.found = 0  # call objects read whole

    def read(self, text: str, at: int, final: bool) -> int:
        while at < len(text) and not self.done:
            at = self._step(text, at)
        if final and not self.done:
            self.done = self.failed = True
        return at

    def step(self, text: str, at: int, final: bool) -> tuple[int, bool | None]:
        """`read` as a reader's step: (position, True) while the value arrives, (position, False) once it
        is not calls (the block is given back), (position, None) once its calls are read."""
        at = self.read(text, at, final)
        if not self.done:
            return at, True
        if self.failed:
            self.reader.fail(cut=final and at >= len(text))
            return at, False
        return at, None

    def _step(self, text: str, at: int) -> int:
        if self.state == "start":
            pos = skip_space(text, at)
            self.reader.keep(text[at:pos])
            if pos == len(text):
                return pos
            if text[pos] == "{":
                self.state, self.item = "object", _Object(self.reader)
                return pos
            if text[pos] == "[":
                self.state, self.list_span = "list", JsonSpan(depth=1)
                self.reader.keep("[")
                return pos + 1
            self.done = self.failed = True
            return pos
        if self.state == "object":
            return self._object(text, at)
        return self._list(text, at)

    def _object(self, text: str, at: int) -> int:
        assert self.item is not None
        end = self.item.feed(text, at)
        self.reader.keep(text[at:end])
        if self.item.done:
            self.done = True
            self.failed = not self.item.ok
            self.found += self.item.ok
        return end

    def _list(self, text: str, at: int) -> int:
        assert self.list_span is not None
        if self.state == "item":
            assert self.item is not None
            end = self.item.feed(text, at)
            self.list_span.advance(text, at, end)
            self.reader.keep(text[at:end])
            if self.item.done:
                self.state = "list" if self.item.ok else "skip"
                self.found += self.item.ok
            return end
        if self.state == "skip":  # an item was not a call: the rest of the list is given back with it
            end = self.list_span.advance(text, at)
            self.reader.keep(text[at:end])
            if self.list_span.done:
                self.done = self.failed = True
            return end
        pos = skip_space(text, at)
        if pos < len(text) and text[pos] == ",":
            pos = skip_space(text, pos + 1)
        self.reader.keep(text[at:pos])
        if pos == len(text):
            return pos
        if text[pos] == "]":
            self.reader.keep("]")
            self.done = True
            self.failed = self.found == 0
            return pos + 1
        if text[pos] != "{":
            self.state = "skip"
            return pos
        self.state, self.item = "item", _Object(self.reader)
        return pos
