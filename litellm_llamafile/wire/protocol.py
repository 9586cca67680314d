"""The sans-IO protocol: what the adapter says to a llama.cpp-family server, with no I/O in it.

Every conversation with a server (probing it, a chat, a repair retry, a token count, ...) is written once,
as a generator (a `Flow`) that yields `HttpCall`s and receives each answer's decoded JSON. An HTTP error the
flow may handle (a 404 from an older server) is thrown into it as the LiteLLM exception. The two drivers in
`transport.py`, one blocking and one async, are the only code that runs flows against a network.

The answer checks (status -> LiteLLM exception, JSON body -> object, one SSE line -> event) are pure
functions here, so both drivers share them.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..core import errors
from ..core.redaction import Secrets

JSON = dict[str, Any]
T = TypeVar("T")


class Endpoint:
    """Every path the adapter uses, in one table."""

    CHAT = "/v1/chat/completions"
    COMPLETIONS = "/v1/completions"
    EMBEDDINGS = "/v1/embeddings"
    PROPS = "/props"
    TOKENIZE = "/tokenize"
    APPLY_TEMPLATE = "/apply-template"


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One request: method, path on the server, JSON body. With `stream`, the body asks for server-sent
    events and the answer is `{"events": [...], "cut_off": bool}`: every event, and whether the reply ran
    out of the server's context before it ended."""

    method: str
    path: str
    body: Mapping[str, Any] | None = None
    stream: bool = False


Flow = Generator[HttpCall, JSON, T]
C = TypeVar("C")


class StreamMachine(Protocol[C]):
    """A stream's translation (sans-IO): events in, output chunks out."""

    @property
    def settled(self) -> bool:
        """Nothing more is needed from the stream (the reply is complete and its usage known)."""

    def on_event(self, event: JSON) -> list[C]: ...

    def cut_off(self) -> None:
        """The reply ran out of the server's context mid-stream."""

    def on_end(self) -> list[C]: ...


def single(call: HttpCall) -> Flow[JSON]:
    """A flow of one request, whose answer is the result."""
    return (yield call)


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """One step of a flow: the next call to make, or (`done`) its result."""

    call: HttpCall | None = None
    result: T | None = None
    done: bool = False


def step(flow: Flow[T], answer: JSON | None, failure: Exception | None) -> Step[T]:
    """Resume `flow` with the last call's answer (None to start it) or its failure. A StopIteration
    never leaves here: a driver may run this on a worker thread, and a Future refuses one."""
    try:
        call = flow.send(answer) if failure is None else flow.throw(failure)  # type: ignore[arg-type]
    except StopIteration as done:
        return Step(result=done.value, done=True)
    return Step(call=call)


def finished(flow: Flow[T]) -> T:
    """The result of a flow that needs no HTTP (everything was cached); ValueError if it asks for some."""
    try:
        call = next(flow)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    flow.close()
    raise ValueError(f"flow needs HTTP ({call.method} {call.path})")


# -- answers ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    """Who answered, for error messages: the URL called, the model, and the secrets to mask."""

    url: str
    model: str
    secret: Secrets


def json_object(peer: Peer, status: int, body: str) -> JSON:
    """A 2xx body -> its JSON object, or the typed error for one that is not."""
    data = _json_or_missing(body)
    if data is _MISSING:
        raise errors.bad_body(peer.url, peer.model, status, body, peer.secret, "a body that is not JSON")
    if not isinstance(data, dict):
        raise errors.bad_body(peer.url, peer.model, status, body, peer.secret, "JSON that is not an object")
    return data


class Done:
    """The `data: [DONE]` marker that ends an OpenAI-style stream."""


DONE = Done()


def sse_event(peer: Peer, line: str) -> JSON | Done | None:
    """One SSE line -> a JSON event, DONE, or None (comments, blank lines, other fields).

    llama-server reports a failure mid-stream (e.g. "Context size has been exceeded.") as an `error:` field
    holding the bare error object; other servers send `data: {"error": {...}}`."""
    field, _, data = line.partition(":")
    data = data.strip()
    if field not in ("data", "error") or not data:
        return None
    if data == "[DONE]":
        return DONE
    event = _json_or_missing(data)
    if event is _MISSING:
        raise errors.bad_body(peer.url, peer.model, 200, data, peer.secret, "a stream event that is not JSON")
    if not isinstance(event, dict):
        raise errors.bad_body(
            peer.url, peer.model, 200, data, peer.secret, "a stream event that is not an object"
        )
    if field == "error" and "error" not in event:
        event = {"error": event}
    if event.get("error") is not None:
        error = event["error"]
        status = error.get("code", 500) if isinstance(error, dict) else 500
        raise errors.from_status(
            status if isinstance(status, int) else 500,
            json.dumps(event),
            url=peer.url,
            model=peer.model,
            secret=peer.secret,
        )
    return event


class LineTooLong(Exception):
    """An event-stream line past the configured bound."""


class LineSplitter:
    """Bytes of an event stream -> its lines, holding at most `limit` bytes of an unfinished line.
    Each byte is scanned once, however the stream is chunked."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[str]:
        scan = len(self._pending)
        self._pending += data
        lines: list[str] = []
        start = 0
        while (end := self._pending.find(b"\n", scan)) >= 0:
            lines.append(self._pending[start:end].rstrip(b"\r").decode("utf-8", "replace"))
            start = scan = end + 1
        del self._pending[:start]
        if len(self._pending) > self._limit:
            raise LineTooLong(f"an event-stream line longer than {self._limit} bytes")
        return lines

    def rest(self) -> bytes:
        """What is left of an unfinished last line (non-empty: the stream was cut mid-line)."""
        return bytes(self._pending)


class EventDecoder:
    """Bytes of an event stream -> its JSON events, up to [DONE]; however the bytes are chunked."""

    def __init__(self, peer: Peer, max_line: int) -> None:
        self._peer = peer
        self._lines = LineSplitter(max_line)
        self.done = False

    def events(self, data: bytes) -> Iterator[JSON]:
        for line in self._lines.feed(data):
            if self.done:
                return
            event = sse_event(self._peer, line)
            if event is DONE:
                self.done = True
            elif isinstance(event, dict):
                yield event

    def close(self) -> None:
        """The stream ended: an event cut in the middle is a broken stream, not bad JSON."""
        rest = self._lines.rest()
        if not self.done and rest.strip():
            raise errors.stream_broken(
                self._peer.url, self._peer.model, f"cut in the middle of an event ({len(rest)} bytes)"
            )


def collected_events(peer: Peer, body: str, max_line: int) -> JSON:
    """A whole event-stream body -> the answer of a `stream` HttpCall: its events, and whether the reply
    ran out of the server's context (an error event) before it ended."""
    decoder = EventDecoder(peer, max_line)
    events: list[JSON] = []
    try:
        events.extend(decoder.events(body.encode()))
        decoder.close()
    except errors.ReplyOutOfContext:
        return {"events": events, "cut_off": True}
    return {"events": events, "cut_off": False}


def is_event_stream(content_type: str | None) -> bool:
    """Whether a streamed answer is server-sent events. Read as events, anything else (an HTML error page,
    a whole JSON reply) would be skipped line by line and end as a reply with nothing in it."""
    return content_type is None or content_type.lower().startswith("text/event-stream")


class _Missing:
    pass


_MISSING = _Missing()


def _json_or_missing(text: str) -> object:
    """json.loads, or _MISSING for text that is not JSON (or nests deeper than Python's recursion limit).
    Callers raise outside `except`: the decoder's error holds the whole body, which must not be chained."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _MISSING


def text_size(event: JSON) -> int:
    """How much generated text a stream event delivers (llama-server sends one token's worth per event):
    a chat delta's content and reasoning, or a text completion's text, in characters."""
    choices = event.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        return 0
    delta = choice.get("delta")
    pieces = [delta.get("content"), delta.get("reasoning_content")] if isinstance(delta, dict) else []
    return sum(len(piece) for piece in [*pieces, choice.get("text")] if isinstance(piece, str))


def carries_text(event: JSON) -> bool:
    """Whether a stream event delivers generated text."""
    return text_size(event) > 0
