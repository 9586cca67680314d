"""Stream assembly: server text deltas -> content, reasoning and tool-call deltas as they become final.

Prose streams as it arrives; reasoning too, into its own field. A family call streams as OpenAI streams
calls: announced (id, name) once it is certain (the family's opener and an offered tool's name read; a
forced call from its first token), then its arguments in fragments as the model writes them. What is
not certain yet (an open bracket in prose, a block whose name is still being read) is held back until the
scanner decides, so no fence or marker ever leaks into `content`. A call's arguments lack their last
character until the call closes: a call cut off after it was announced never has valid JSON arguments,
its text comes as content as in the non-streamed reply, and finish_reason is not `tool_calls` for it.
The assembled stream equals the non-streamed parse of the same text for any chunk boundaries, because
both run the same `ReplyScanner` and read it through the same takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .offered import Offered
from .parsing import ReplyScanner, ToolCall, reply_from_scanner
from .reply_parts import CallDelta


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """What remains to send when the server's stream ends (reasoning goes out before content), and the
    reply's closed calls (`tool_calls`, as the non-streamed reply has them)."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    reasoning: str = ""
    call_deltas: tuple[CallDelta, ...] = ()


def final_finish_reason(server_reason: str | None, has_calls: bool) -> str:
    """`length` wins (a cut-off reply is never a finished call); otherwise calls mean `tool_calls`."""
    if server_reason == "length":
        return "length"
    if has_calls:
        return "tool_calls"
    return server_reason or "stop"


class Trimmer:
    """Streams a text so that the pieces join into `text.strip()`: leading whitespace is dropped,
    trailing whitespace waits to see whether more text follows it. The waiting whitespace is a list of
    pieces joined once when text follows, so a long run of whitespace-only deltas costs linear time."""

    def __init__(self) -> None:
        self._started = False
        self._space: list[str] = []

    def __call__(self, chunk: str, *, final: bool) -> str:
        if not self._started:
            chunk = chunk.lstrip()
            if not chunk:
                return ""
            self._started = True
        body = chunk.rstrip()
        if not body:
            if not final:
                self._space.append(chunk)
            return ""
        self._space.append(body)
        out = "".join(self._space)
        self._space.clear()
        if not final and len(body) < len(chunk):
            self._space.append(chunk[len(body) :])
        return out


class StreamAssembler:
    """Feed server text deltas; get the content that is safe to emit; `take_reasoning` gives the
    reasoning that is safe to emit (send it before the content of the same delta); `finish` the rest.

    With `parse_tools=False` (no tools offered) text passes through untouched, unless `parse_reasoning`
    asks for reasoning to be split off (then no tool calls are looked for). `tools`: names, OpenAI tool
    dicts or an `Offered`; `starts_in_reasoning`: the prompt opened a think block; `opener_echoed`: the
    server repeats it; `forced`: the reply is a constrained call (see parsing.ReplyScanner); `accepts`:
    whether a closed call may reach the client (a call it refuses is withheld, see reply_parts)."""

    def __init__(
        self,
        tools: Iterable[Any] | Offered | None,
        *,
        parse_tools: bool,
        parse_reasoning: bool = False,
        starts_in_reasoning: bool = False,
        reply_prefix: str = "",
        opener_echoed: bool = False,
        forced: bool = False,
        accepts: Callable[[str, str], bool] | None = None,
    ) -> None:
        self._passthrough = not (parse_tools or parse_reasoning or starts_in_reasoning or opener_echoed)
        self._scanner = ReplyScanner(
            tools if parse_tools else (),
            starts_in_reasoning=starts_in_reasoning,
            reply_prefix=reply_prefix,
            opener_echoed=opener_echoed,
            forced=forced,
        )
        self._scanner.accepts = accepts
        self._content = Trimmer()
        self._reasoning = Trimmer()
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

    def take_calls(self, id_seed: str = "") -> list[CallDelta]:
        """Tool-call deltas that became final since the last call; `id_seed` (the response id) makes
        call ids match the non-streamed parse."""
        if self._passthrough:
            return []
        return self._scanner.take_call_deltas(id_seed)

    def finish(self, server_reason: str | None, *, id_seed: str = "") -> StreamEnd:
        """End of stream: what is left to send, and the reply's closed calls."""
        if self._passthrough:
            return StreamEnd("", (), final_finish_reason(server_reason, False))
        self._scanner.finish(truncated=server_reason == "length")
        reasoning = self._reasoning(self._scanner.take_reasoning(), final=True)
        tail = self._content(self._scanner.take_content(), final=True)
        if tail:
            self.emitted.append(tail)
        calls = reply_from_scanner(self._scanner, id_seed=id_seed).tool_calls
        deltas = tuple(self._scanner.take_call_deltas(id_seed))
        return StreamEnd(tail, calls, final_finish_reason(server_reason, bool(calls)), reasoning, deltas)
