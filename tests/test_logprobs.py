"""Token logprobs in a stream: every token the server generated comes out, in OpenAI's shape, on the
stream's chunks, also when the text is held back and parsed into a tool call (a call keeps the logprobs
of its text, as the non-streamed reply does)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest

from .support.data import SEARCH
from .support.fake_server import Exchange, FaultyServer, chunk

# The fake servers listen on 127.0.0.1; every other host stays blocked.
pytestmark = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
CALL_TEXT = '{"name": "web_search", "arguments": {"query": "dodecahedron"}}'


def token(text: str) -> dict[str, Any]:
    alternatives = [{"token": text, "logprob": -0.25, "bytes": list(text.encode())}]
    alternatives.append({"token": "x", "logprob": -2.5, "bytes": [120]})
    return {
        "id": 1,
        "token": text,
        "logprob": -0.25,
        "bytes": list(text.encode()),
        "top_logprobs": alternatives,
    }


def pieces_of(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def streams(text: str) -> Callable[[Exchange], None]:
    """A chat server streaming `text` a few characters per event, each event with its token's logprobs."""

    def chat(exchange: Exchange) -> None:
        events = []
        for piece in pieces_of(text):
            event = chunk(piece)
            event["choices"][0]["logprobs"] = {"content": [token(piece)]}
            events.append(event)
        events.append(chunk(finish_reason="stop"))
        exchange.sse(events)

    return chat


def streamed_tokens(chunks: list[Any]) -> list[Any]:
    return [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]


def read(mode: str, **kwargs: Any) -> list[Any]:
    kwargs = {
        "model": "llamafile/smol",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "logprobs": True,
        "top_logprobs": 2,
        **kwargs,
    }
    if mode == "stream":
        return list(litellm.completion(**kwargs))

    async def run() -> list[Any]:
        return [piece async for piece in await litellm.acompletion(**kwargs)]

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_streamed_text_carries_each_tokens_logprobs(faulty: Callable[..., FaultyServer], mode: str) -> None:
    text = "Hello there, friend."
    server = faulty(streams(text))
    chunks = read(mode, api_base=server.url)
    tokens = streamed_tokens(chunks)
    assert "".join(t.token for t in tokens) == text
    assert all(len(t.top_logprobs) == 2 and t.logprob == -0.25 for t in tokens)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    sent = json.loads(server.chat_requests[0].body)
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_parsed_tool_call_keeps_the_logprobs_of_its_text(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(streams(CALL_TEXT))
    chunks = read(mode, api_base=server.url, tools=[SEARCH], tool_choice="auto")
    assert "".join(t.token for t in streamed_tokens(chunks)) == CALL_TEXT
    built = litellm.stream_chunk_builder(chunks)
    (tool_call,) = built.choices[0].message.tool_calls
    assert tool_call.function.name == "web_search"
    assert json.loads(tool_call.function.arguments) == {"query": "dodecahedron"}
    assert not built.choices[0].message.content


def test_without_logprobs_no_chunk_carries_any(faulty: Callable[..., FaultyServer]) -> None:
    server = faulty(lambda exchange: exchange.sse([chunk("Hi"), chunk(finish_reason="stop")]))
    chunks = list(
        litellm.completion(
            model="llamafile/smol",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            api_base=server.url,
        )
    )
    assert streamed_tokens(chunks) == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi"
