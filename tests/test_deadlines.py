"""`timeout=` bounds the whole call, a slow body included, and a complete streamed reply stays complete
when the server then holds the connection open."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import litellm
import pytest

from .support.calls import call, content_of, probed, raises_typed
from .support.fake_server import Exchange, FaultyServer, answer_chat, chat_completion, chunk, chunked_event

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])


@local_only
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_server_trickling_its_body_is_cut_at_the_deadline(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    body = json.dumps(chat_completion("a" * 200)).encode()
    sent: list[int] = []

    def trickle(exchange: Exchange) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        exchange.raw(head.encode())
        exchange.trickle(body, 0.05, sent)  # the whole body takes ~15 s

    server = faulty(trickle)
    with pytest.raises(litellm.Timeout):
        call(mode, api_base=server.url, timeout=1)
    assert len(sent) < len(body)  # the call gave up long before the body was complete


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_finished_stream_on_a_held_open_connection_is_complete(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    usage = {**chunk(finish_reason="stop"), "usage": {"prompt_tokens": 3, "completion_tokens": 2}}

    def chat(exchange: Exchange) -> None:
        exchange.sse([chunk("all "), chunk("here"), usage], end="stall")  # no [DONE], never closed

    server = faulty(chat)
    assert content_of(call(mode, api_base=server.url, timeout=3)) == "all here"


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_that_never_finishes_is_still_a_timeout(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(lambda exchange: exchange.sse([chunk("partial")], end="stall"))
    with raises_typed(litellm.Timeout):
        call(mode, api_base=server.url, timeout=1)


# A response head, one byte every 0.2 s (~30 s in all), never finished: each read is quick.
TRICKLED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 100 + b"\r\n"


def _trickled_head(exchange: Exchange, sent: list[int]) -> None:
    exchange.trickle(TRICKLED_HEAD, 0.2, sent)


@local_only
@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_a_server_trickling_its_headers_is_cut_at_the_deadline(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    sent: list[int] = []
    server = faulty(lambda exchange: _trickled_head(exchange, sent))
    with raises_typed(litellm.Timeout):
        call(mode, api_base=probed(server.url), timeout=1)
    assert 0 < len(sent) < 40  # the call gave up after about five bytes of a 150-byte head


@local_only
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_embedding_whose_headers_trickle_is_cut_at_the_deadline(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    sent: list[int] = []
    server = faulty(every=lambda exchange: _trickled_head(exchange, sent))
    embed = litellm.embedding if mode == "sync" else litellm.aembedding
    with pytest.raises(litellm.Timeout):
        result = embed(model="llamafile/smol", input=["a"], api_base=server.url, timeout=1)
        if mode == "async":
            asyncio.run(result)  # type: ignore[arg-type]
    assert 0 < len(sent) < 40


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_event_trickling_in_is_a_timeout_with_the_tokens_so_far(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    """Every read is quick, but the next event never completes: each wait for an event is bounded."""
    sent: list[int] = []

    def chat(exchange: Exchange) -> None:
        exchange.sse([chunk("Once"), chunk(" upon")], end="open")
        exchange.trickle(b'1000\r\ndata: {"choices": [' + b" " * 4000, 0.05, sent)

    server = faulty(chat)
    with raises_typed(litellm.Timeout) as caught:
        call(mode, api_base=probed(server.url), timeout=1)
    assert "the reply so far had 2 tokens" in str(caught[0])
    assert len(sent) < 200


@local_only
@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_the_deadline_covers_every_request_of_the_call(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    """The /props probe and the chat each take 0.7 s: within timeout=1 one by one, not together."""

    def slow(exchange: Exchange) -> None:
        time.sleep(0.7)
        if exchange.seen.path == "/props":
            exchange.reply(200, exchange.server.props)
        else:
            answer_chat("late")(exchange)

    server = faulty(every=slow)
    with raises_typed(litellm.Timeout):
        call(mode, api_base=server.url, timeout=1)


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_opened_late_in_the_call_may_still_wait_timeout_for_each_event(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    """The probe takes most of timeout=3; the stream then opens, and each event may take up to 3 s."""

    def every(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            time.sleep(2)
            exchange.reply(200, exchange.server.props)
            return
        exchange.sse([], end="open")
        for event in [chunk("slow"), chunk(" but"), chunk(" steady"), chunk(finish_reason="stop")]:
            time.sleep(1)
            exchange.raw(chunked_event(f"data: {json.dumps(event)}".encode()))
        exchange.raw(chunked_event(b"data: [DONE]") + b"0\r\n\r\n")

    server = faulty(every=every)
    assert content_of(call(mode, api_base=server.url, timeout=3)) == "slow but steady"
