"""Model text -> OpenAI tool calls.

The model has no function-calling API; it writes calls as JSON text: bare objects or arrays, inside
```json fences, behind Mistral's `[TOOL_CALLS]` marker (or `[TOOL_CALLS]name[ARGS]{...}`), with prose
around them. `ReplyScanner` finds them in one left-to-right pass that can be fed in pieces, so the
streaming path and the one-shot `parse_tool_calls` run the same code and agree for any chunking.

Guarantees: linear time (each character is looked at a bounded number of times, candidate spans are
decoded once each), bounded memory for nesting (depth is counted, not stacked, past MAX_DEPTH), and no
exception escapes for any input text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 64  # deeper JSON is never a sane tool call; past it brackets are only counted
TOOL_CALLS_MARKER = "[TOOL_CALLS]"
ARGS_MARKER = "[ARGS]"
FENCE = "```"
_MAX_NAME_LEN = 128

# Keys under which models spell a call's name and arguments.
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
_ALLOWED_KEYS = frozenset({*_NAME_KEYS, *_ARGUMENT_KEYS, "type", "id", "index"})

# What can change the scanner's state, by state. Everything else is skipped by the regex engine.
_AT_TOP = re.compile(r"[{\[`]")
_IN_JSON = re.compile(r'[{}\[\]"`]')
_IN_STRING = re.compile(r'["\\]')
_OPEN_RUN = re.compile(r"[{\[]+")
_CLOSE_RUN = re.compile(r"[}\]]+")
_MIN_CALL_LEN = len('{"name":""}')
_NAME_BEFORE_ARGS = re.compile(r"([A-Za-z_][\w.\-]*)\s*$")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One parsed call; `arguments` is a JSON object serialized as a string, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """A model reply split into prose (`content`, None when empty) and tool calls."""

    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()


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


def _as_arguments(value: object) -> str | None:
    if value is None:
        return "{}"
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            return None
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False)
    return None


def _as_call(value: object, names: frozenset[str]) -> tuple[str, str] | None:
    """(name, arguments) if `value` is a call to an offered tool in one of the common spellings."""
    if not isinstance(value, Mapping) or not set(value) <= _ALLOWED_KEYS:
        return None
    function = value.get("function")
    if isinstance(function, Mapping):  # OpenAI shape: {"type": "function", "function": {...}}
        return _as_call(function, names)
    name = next((value[k] for k in _NAME_KEYS if isinstance(value.get(k), str)), None)
    if name not in names:
        return None
    raw_arguments = next((value[k] for k in _ARGUMENT_KEYS if k in value), None)
    arguments = _as_arguments(raw_arguments)
    return None if arguments is None else (name, arguments)


def calls_in_json(value: object, names: frozenset[str]) -> list[tuple[str, str]] | None:
    """All calls in a decoded JSON value, or None unless every element is a valid call."""
    if isinstance(value, Mapping) and set(value) == {"tool_calls"}:
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    calls = [_as_call(item, names) for item in items]
    if any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


class ReplyScanner:
    """Incremental tool-call finder over a growing reply text.

    `feed` text as it arrives, `finish` at the end. `removed` lists the text regions that are tool calls
    (or their fences and markers) and so are not content; `stable_end` is how far the content is final,
    which is what a stream may already emit.
    """

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self._quoted_names = (
            re.compile("|".join(re.escape(json.dumps(name)) for name in sorted(names))) if names else None
        )
        self._parts: list[str] = []
        self._text = ""
        self._pos = 0
        self._stack: list[_Open] = []
        self._overflow = 0  # brackets open beyond MAX_DEPTH: counted only
        self._in_string = False
        self._fence: _Fence | None = None
        self._fence_calls: list[int] = []  # indexes into removed/calls made inside the open fence
        self._marker_at: int | None = None  # first [TOOL_CALLS]: the rest waits for finish
        self._pending_name: tuple[int, str] | None = None  # `name` of a `name[ARGS]{...}` call
        self.removed: list[tuple[int, int]] = []
        self.calls: list[tuple[str, str]] = []
        self.finished = False

    @property
    def text(self) -> str:
        if self._parts:
            self._text += "".join(self._parts)
            self._parts.clear()
        return self._text

    def feed(self, chunk: str) -> None:
        if chunk:
            self._parts.append(chunk)
            self._scan(final=False)

    def finish(self, *, truncated: bool = False) -> None:
        """End of reply. `truncated` (the server stopped at max_tokens): unclosed brackets are a cut-off
        structure whose inner objects are not calls; otherwise an unclosed bracket was prose."""
        self._scan(final=True)
        if truncated:
            self._stack.clear()
            self._overflow = 0
        else:
            self._abandon_stack()
        if self._fence is not None:
            self._close_fence(len(self.text))
        self.finished = True

    def stable_end(self) -> int:
        """Text before this offset will not change role (content vs. call) whatever comes next."""
        if self.finished:
            return len(self.text)
        end = self._pos
        if self._stack:
            end = min(end, self._stack[0].start)
        if self._fence is not None:
            end = min(end, self._fence.start)
        if self._marker_at is not None:
            end = min(end, self._marker_at)
        return end

    # -- scanning ---------------------------------------------------------------------------------

    def _scan(self, *, final: bool) -> None:
        # One regex search per structural character; plain text and string bodies are skipped in C.
        text = self.text
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
            nested = bool(stack) or self._overflow > 0
            m = (_IN_JSON if nested else _AT_TOP).search(text, pos)
            if m is None:
                pos = n
                break
            i = m.start()
            c = text[i]
            if c == "{" or c == "[":
                if not nested and c == "[":
                    if not final and i + len(TOOL_CALLS_MARKER) > n and _could_be_marker(text[i:]):
                        pos = i
                        break
                    if text.startswith(TOOL_CALLS_MARKER, i):
                        self._on_marker(i, i + len(TOOL_CALLS_MARKER))
                        pos = i + len(TOOL_CALLS_MARKER)
                        continue
                    if self._marker_at is not None and text.startswith(ARGS_MARKER, i):
                        self._on_args_marker(text, i)
                        pos = i + len(ARGS_MARKER)
                        continue
                if self._overflow or len(stack) >= MAX_DEPTH:
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
                if not final and i + len(FENCE) > n:
                    pos = i
                    break
                if not text.startswith(FENCE, i):
                    pos = i + 1
                    continue
                resume = self._on_fence(text, i, final=final)
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
            if end - top.start >= _MIN_CALL_LEN:
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
        if depth > MAX_DEPTH:
            return
        text = self.text
        if self._pending_name is None and (
            end - start < _MIN_CALL_LEN
            or self._quoted_names is None
            or not self._quoted_names.search(text, start, end)
        ):
            return  # cheap rejection: a call names an offered tool, in quotes
        try:
            value = json.loads(text[start:end])
        except (ValueError, RecursionError):
            return
        if self._pending_name is not None and isinstance(value, Mapping):
            name_start, name = self._pending_name
            self._pending_name = None
            arguments = _as_arguments(value)
            if name in self.names and arguments is not None:
                self._record([(name, arguments)], name_start, end)
            return
        calls = calls_in_json(value, self.names)
        if calls:
            self._record(calls, start, end)

    def _record(self, calls: list[tuple[str, str]], start: int, end: int) -> None:
        if self._fence is not None:
            self._fence_calls.append(len(self.removed))
        self.removed.append((start, end))
        self.calls.extend(calls)

    # -- fences and markers -----------------------------------------------------------------------

    def _on_fence(self, text: str, i: int, *, final: bool) -> int | None:
        """Handle a ``` at `i`; return where scanning resumes, or None to wait for more text."""
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
        text = self.text
        inner = [self.removed[k] for k in self._fence_calls]
        cursor = fence.body_start
        for start, stop in inner:
            if text[cursor:start].strip():
                return  # the fence holds more than calls: keep it, minus the calls
            cursor = stop
        closing = end - len(FENCE) if text.startswith(FENCE, end - len(FENCE)) else end
        if text[cursor:closing].strip():
            return
        first = self._fence_calls[0]
        del self.removed[first:]
        self.removed.append((fence.start, end))
        self._fence_calls = []

    def _on_marker(self, start: int, end: int) -> None:
        if self._marker_at is None:
            self._marker_at = start
        self.removed.append((start, end))
        self._pending_name = None

    def _on_args_marker(self, text: str, i: int) -> None:
        """`[TOOL_CALLS]name[ARGS]{...}`: the name sits between the previous removal and [ARGS]."""
        since = self.removed[-1][1] if self.removed else 0
        m = _NAME_BEFORE_ARGS.search(text, since, i)
        if m is not None and len(m.group(1)) <= _MAX_NAME_LEN:
            self._pending_name = (m.start(1), m.group(1))


def assemble_content(text: str, removed: list[tuple[int, int]], end: int | None = None) -> str:
    """`text[:end]` with the removed regions cut out."""
    limit = len(text) if end is None else end
    pieces: list[str] = []
    cursor = 0
    for start, stop in removed:
        if start >= limit:
            break
        pieces.append(text[cursor:start])
        cursor = max(cursor, stop)
    if cursor < limit:
        pieces.append(text[cursor:limit])
    return "".join(pieces)


def _could_be_marker(tail: str) -> bool:
    return TOOL_CALLS_MARKER.startswith(tail) or ARGS_MARKER.startswith(tail)


def reply_from_scanner(scanner: ReplyScanner, *, id_seed: str = "") -> ParsedReply:
    """The final split of a finished scan: content is everything not removed, stripped."""
    content = assemble_content(scanner.text, scanner.removed).strip()
    calls = tuple(
        ToolCall(id=call_id(id_seed, index), name=name, arguments=arguments)
        for index, (name, arguments) in enumerate(scanner.calls)
    )
    return ParsedReply(content=content or None, tool_calls=calls)


def parse_tool_calls(
    text: str, tools: Iterable[Any] | None, *, id_seed: str = "", truncated: bool = False
) -> ParsedReply:
    """Split a model reply into prose and calls to the offered `tools` (names or OpenAI tool dicts).

    Accepts bare JSON objects and arrays, ```json fences, `[TOOL_CALLS][...]` and
    `[TOOL_CALLS]name[ARGS]{...}`, and the key spellings name/arguments, function/parameters and
    OpenAI's {"type": "function", "function": {...}}. JSON that names no offered tool stays prose.
    Never raises on any `text`; runs in time linear in its length.
    """
    scanner = ReplyScanner(tool_names(tools))
    scanner.feed(text)
    scanner.finish(truncated=truncated)
    return reply_from_scanner(scanner, id_seed=id_seed)


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
