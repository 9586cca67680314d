"""Stream assembly: server text deltas -> content deltas now, tool calls at the end.

Prose streams as it arrives; reasoning too, into its own field. Text that may still turn out to be a tool
call (an open bracket, a fence, a family block) is held back until the scanner decides; calls are emitted
once complete and validated, so no fence or marker ever leaks into `content` and a truncated reply never
yields a call. The assembled stream equals the non-streamed parse of the same text for any chunk
boundaries, because both run the same `ReplyScanner` and read it through the same `take_content` /
`take_reasoning`, which give only text whose role is final.
"""

from __future__ import annotations

from dataclasses import dataclass

from .parsing import ReplyScanner, ToolCall, call_id

ARGUMENT_FRAGMENT_CHARS = 64  # tool-call arguments are sent in pieces, as OpenAI streams them


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What remains to send when the server's stream ends (reasoning goes out before content)."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    reasoning: str = ""


def final_finish_reason(server_reason: str | None, has_calls: bool) -> str:
    """`length` wins (a cut-off reply is never a finished call); otherwise calls mean `tool_calls`."""
    if server_reason == "length":
        return "length"
    if has_calls:
        return "tool_calls"
    return server_reason or "stop"


class _Trimmer:
    """Streams a text so that the pieces join into `text.strip()`: leading whitespace is dropped,
    trailing whitespace waits to see whether more text follows it."""

    def __init__(self) -> None:
        self._started = False
        self._pending_space = ""

    def __call__(self, chunk: str, *, final: bool) -> str:
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
        return out


class StreamAssembler:
    """Feed server text deltas; get the content that is safe to emit; `take_reasoning` gives the
    reasoning that is safe to emit (send it before the content of the same delta); `finish` the rest.

    With `parse_tools=False` (no tools offered) text passes through untouched, unless `parse_reasoning`
    asks for reasoning to be split off (then no tool calls are looked for). `starts_in_reasoning`: the
    prompt opened a think block; `opener_echoed`: the server repeats it (see parsing.ReplyScanner)."""

    def __init__(
        self,
        names: frozenset[str],
        *,
        parse_tools: bool,
        parse_reasoning: bool = False,
        starts_in_reasoning: bool = False,
        reply_prefix: str = "",
        opener_echoed: bool = False,
    ) -> None:
        self._passthrough = not (parse_tools or parse_reasoning or starts_in_reasoning or opener_echoed)
        self._scanner = ReplyScanner(
            names if parse_tools else frozenset(),
            starts_in_reasoning=starts_in_reasoning,
            reply_prefix=reply_prefix,
            opener_echoed=opener_echoed,
        )
        self._content = _Trimmer()
        self._reasoning = _Trimmer()
        self.emitted: list[str] = []

    def feed(self, delta: str) -> str:
        if not delta:
            return ""
        if self._passthrough:
            self.emitted.append(delta)
            return delta
        self._scanner.feed(delta)
        out = self._content(self._scanner.take_content(), final=False)
        if out:
            self.emitted.append(out)
        return out

    def take_reasoning(self) -> str:
        """Reasoning that became final since the last call."""
        if self._passthrough:
            return ""
        return self._reasoning(self._scanner.take_reasoning(), final=False)

    def finish(self, server_reason: str | None, *, id_seed: str = "") -> StreamEnd:
        """End of stream; `id_seed` (the response id) makes call ids match the non-streamed parse."""
        if self._passthrough:
            return StreamEnd("", (), final_finish_reason(server_reason, False))
        self._scanner.finish(truncated=server_reason == "length")
        reasoning = self._reasoning(self._scanner.take_reasoning(), final=True)
        tail = self._content(self._scanner.take_content(), final=True)
        if tail:
            self.emitted.append(tail)
        calls = tuple(
            ToolCall(id=call_id(id_seed, index), name=name, arguments=arguments)
            for index, (name, arguments) in enumerate(self._scanner.calls)
        )
        return StreamEnd(tail, calls, final_finish_reason(server_reason, bool(calls)), reasoning)


def argument_fragments(arguments: str, size: int = ARGUMENT_FRAGMENT_CHARS) -> list[str]:
    """Split serialized arguments for streaming; joining the pieces gives the exact string back."""
    if not arguments:
        return [""]
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]
