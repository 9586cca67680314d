"""Helpers that make one call in each mode and look inside what comes back (typed errors, sockets,
everything an exception could print)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import litellm
import pytest
from litellm.exceptions import MidStreamFallbackError
from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

HI = [{"role": "user", "content": "Hi"}]
MODES = ["sync", "async", "stream", "astream"]

# LiteLLM's stream wrapper, from 1.110 (seen on 1.110.2, not on 1.108.7), turns a provider's "stop" into
# "tool_calls" once any tool-call delta has passed, so a call announced and then withheld still ends a
# stream as "tool_calls" there; its arguments never parse either way.
STOP_AFTER_ANNOUNCED_CALL = (
    "tool_calls" if hasattr(CustomStreamWrapper, "_normalize_tool_call_finish_reason") else "stop"
)


def call(mode: str, **kwargs: Any) -> Any:
    """One litellm call: sync, async, stream or astream (a stream is read to its end, chunks returned)."""
    kwargs.setdefault("model", "llamafile/smol")
    kwargs.setdefault("messages", HI)
    if mode == "sync":
        return litellm.completion(**kwargs)
    if mode == "stream":
        return list(litellm.completion(stream=True, **kwargs))

    async def run() -> Any:
        if mode == "async":
            return await litellm.acompletion(**kwargs)
        stream = await litellm.acompletion(stream=True, **kwargs)
        return [piece async for piece in stream]

    return asyncio.run(run())


def probed(url: str) -> str:
    """`url`, with its /props already read: `timeout=` covers every request of a call, the probe
    included, so a tight one then bounds only the request under test (on a loaded machine too)."""
    from litellm_llamafile.core.settings import LlamafileSettings
    from litellm_llamafile.server.servers import SERVERS

    settings = LlamafileSettings.resolve(api_base=url)
    known = SERVERS.get(settings.api_base)
    known.driver(settings, "smol").run(known.info_flow())
    return url


def content_of(result: Any) -> str | None:
    if isinstance(result, list):
        built = litellm.stream_chunk_builder(result)
        return None if built is None else built.choices[0].message.content
    return str(result.choices[0].message.content)


def underlying(error: BaseException) -> BaseException:
    """LiteLLM's stream wrapper raises failures after the stream opened as a MidStreamFallbackError (a
    ServiceUnavailableError the Router can fall back on) carrying the provider's exception."""
    if isinstance(error, MidStreamFallbackError) and error.original_exception is not None:
        return error.original_exception
    return error


@contextlib.contextmanager
def raises_typed(expected: type[BaseException]) -> Iterator[list[BaseException]]:
    """Like pytest.raises, but looks through a MidStreamFallbackError: an async stream opens lazily, so a
    failure before its first chunk still arrives wrapped. Yields [the provider's exception] once raised."""
    caught: list[BaseException] = []
    with pytest.raises(Exception) as info:
        yield caught
    caught.append(underlying(info.value))
    assert isinstance(caught[0], expected), repr(info.value)


@contextlib.contextmanager
def counted_connects(monkeypatch: pytest.MonkeyPatch, port: int) -> Iterator[list[object]]:
    """Every TCP connect() this process makes to 127.0.0.1:`port` (sync and asyncio both call it)."""
    attempts: list[object] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any, *args: Any) -> Any:
        if isinstance(address, tuple) and address[1] == port:
            attempts.append(address)
        return original(self, address, *args)

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        yield attempts


def client_sockets(port: int) -> set[str]:
    """TCP sockets of this process whose far end is `port`, open or half-closed (their inodes, from /proc:
    the real file descriptors)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                    found.add(fields[9])
    return found


def exception_text(error: BaseException) -> str:
    """Everything an exception holds that a logger, a traceback or an error tracker could print: its
    text, its attributes (the response and the request inside it, headers included), the exceptions
    chained to it and the one a MidStreamFallbackError wraps."""
    texts: list[str] = []
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args)]
        for value in vars(current).values():
            texts.append(repr(value))
            if isinstance(value, BaseException):
                pending.append(value)
            if isinstance(value, httpx.Response):
                with contextlib.suppress(httpx.ResponseNotRead):
                    texts.append(value.text)
                texts.append(repr(value.headers.raw))
                value = value.request
            if isinstance(value, httpx.Request):
                texts += [str(value.url), repr(value.headers.raw)]
        pending += [linked for linked in (current.__cause__, current.__context__) if linked is not None]
    return "\n".join(texts)
