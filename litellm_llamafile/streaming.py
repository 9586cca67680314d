"""Stream assembly: server text deltas -> content deltas now, tool calls at the end.

Prose streams as it arrives. Text that may still turn out to be a tool call (an open bracket, a fence,
a `[TOOL_CALLS]` marker) is held back until the scanner decides; calls are emitted once complete and
validated, so no fence or marker ever leaks into `content` and a truncated reply never yields a call.
The assembled stream equals the non-streamed parse of the same text for any chunk boundaries, because
both run the same `ReplyScanner` and content is emitted only where the scan is final.
"""

from __future__ import annotations

from dataclasses import dataclass

from .parsing import ReplyScanner, ToolCall, call_id

ARGUMENT_FRAGMENT_CHARS = 64  # tool-call arguments are sent in pieces, as OpenAI streams them


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What remains to send when the server's stream ends."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str


def final_finish_reason(server_reason: str | None, has_calls: bool) -> str:
    """`length` wins (a cut-off reply is never a finished call); otherwise calls mean `tool_calls`."""
    if server_reason == "length":
        return "length"
    if has_calls:
        return "tool_calls"
    return server_reason or "stop"


class StreamAssembler:
    """Feed server text deltas; get the content that is safe to emit; `finish` gives the rest.

    With `parse_tools=False` (no tools offered) text passes through untouched.
    """

    def __init__(self, names: frozenset[str], *, parse_tools: bool) -> None:
        self._parse = parse_tools
        self._scanner = ReplyScanner(names)
        self._cursor = 0  # text offset up to which content has been assembled
        self._removed_index = 0  # first removed region not yet passed
        self._started = False  # a non-whitespace character has been emitted
        self._pending_space = ""  # whitespace held: dropped if it turns out to be trailing
        self.emitted: list[str] = []

    def feed(self, delta: str) -> str:
        if not delta:
            return ""
        if not self._parse:
            self.emitted.append(delta)
            return delta
        self._scanner.feed(delta)
        return self._emit(self._scanner.stable_end(), final=False)

    def finish(self, server_reason: str | None, *, id_seed: str = "") -> StreamEnd:
        """End of stream; `id_seed` (the response id) makes call ids match the non-streamed parse."""
        if not self._parse:
            return StreamEnd("", (), final_finish_reason(server_reason, False))
        self._scanner.finish(truncated=server_reason == "length")
        tail = self._emit(len(self._scanner.text), final=True)
        calls = tuple(
            ToolCall(id=call_id(id_seed, index), name=name, arguments=arguments)
            for index, (name, arguments) in enumerate(self._scanner.calls)
        )
        return StreamEnd(tail, calls, final_finish_reason(server_reason, bool(calls)))

    def _emit(self, end: int, *, final: bool) -> str:
        text = self._scanner.text
        removed = self._scanner.removed
        pieces: list[str] = []
        cursor = self._cursor
        index = self._removed_index
        while index < len(removed) and removed[index][1] <= end:
            start, stop = removed[index]
            if start > cursor:
                pieces.append(text[cursor:start])
            cursor = max(cursor, stop)
            index += 1
        if cursor < end:
            pieces.append(text[cursor:end])
            cursor = end
        self._cursor = cursor
        self._removed_index = index
        return self._trimmed("".join(pieces), final=final)

    def _trimmed(self, chunk: str, *, final: bool) -> str:
        """Leading whitespace of the reply is dropped; trailing whitespace waits to see if it is trailing."""
        if not self._started:
            chunk = chunk.lstrip()
            if not chunk:
                return ""
            self._started = True
        body = chunk.rstrip()
        if not body:
            if not final:
                self._pending_space += chunk
            return ""
        out = self._pending_space + body
        self._pending_space = "" if final else chunk[len(body) :]
        self.emitted.append(out)
        return out


def argument_fragments(arguments: str, size: int = ARGUMENT_FRAGMENT_CHARS) -> list[str]:
    """Split serialized arguments for streaming; joining the pieces gives the exact string back."""
    if not arguments:
        return [""]
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]
