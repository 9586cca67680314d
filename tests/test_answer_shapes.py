"""Whatever a server answers, the caller gets the reply or a typed LiteLLM error that quotes what arrived:
wrong JSON shapes, oversized bodies and lines, streams cut mid-event, a broken /props."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest

import litellm_llamafile

from .support.calls import MODES, call, content_of, raises_typed
from .support.fake_server import Exchange, FaultyServer, chat_completion, chunk

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])

WRONG_SHAPES: dict[str, Any] = {
    "message is a string": {"choices": [{"index": 0, "message": "hi", "finish_reason": "stop"}]},
    "choices is a dict": {"choices": {"0": {"message": {"content": "hi"}}}},
    "content is a number": {"choices": [{"index": 0, "message": {"content": 7}, "finish_reason": "stop"}]},
    "usage is text": {**chat_completion("hi"), "usage": "abc"},
    "usage counts are text": {**chat_completion("hi"), "usage": {"prompt_tokens": "many"}},
}


@local_only
@pytest.mark.parametrize("shape", WRONG_SHAPES)
def test_json_of_the_wrong_shape_is_an_api_error_quoting_it(
    faulty: Callable[..., FaultyServer], shape: str
) -> None:
    server = faulty(lambda exchange: exchange.reply(200, WRONG_SHAPES[shape]))
    with pytest.raises(litellm.APIError) as caught:
        call("sync", api_base=server.url)
    assert not isinstance(caught.value, litellm.APIConnectionError)
    assert caught.value.status_code == 200
    assert f"{server.url}/v1/chat/completions answered with JSON that" in str(caught.value)


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_delta_of_the_wrong_shape_is_an_api_error(faulty: Callable[..., FaultyServer], mode: str) -> None:
    bad = {"choices": [{"index": 0, "delta": "hi", "finish_reason": None}]}
    server = faulty(lambda exchange: exchange.sse([bad, chunk(finish_reason="stop")]))
    with raises_typed(litellm.APIError) as caught:
        call(mode, api_base=server.url)
    assert "delta" in str(caught[0])


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_an_error_field_that_is_null_is_no_error(faulty: Callable[..., FaultyServer], mode: str) -> None:
    events = [{**chunk("fine"), "error": None}, chunk(finish_reason="stop")]
    server = faulty(lambda exchange: exchange.sse(events))
    assert content_of(call(mode, api_base=server.url)) == "fine"


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_cut_mid_event_is_a_broken_stream_not_bad_json(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    partial = 'data: {"choices": [{"index": 0, "delta": {"content": "cut he'

    def chat(exchange: Exchange) -> None:
        exchange.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        exchange.raw(f"data: {json.dumps(chunk('first '))}\n\n{partial}".encode())
        exchange.drop()

    server = faulty(chat)
    with raises_typed(litellm.APIConnectionError) as caught:
        call(mode, api_base=server.url)
    assert "middle of an event" in str(caught[0]) or "ended before the reply was complete" in str(caught[0])


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_a_body_past_the_bound_is_a_typed_error(faulty: Callable[..., FaultyServer], mode: str) -> None:
    big = "x" * 200_000

    def chat(exchange: Exchange) -> None:
        if exchange.payload().get("stream"):
            exchange.sse([chunk(big), chunk(finish_reason="stop")])
        else:
            exchange.reply(200, chat_completion(big))

    server = faulty(chat)
    with raises_typed(litellm.APIError) as caught:
        call(mode, api_base=server.url, llamafile_max_body_bytes=50_000, llamafile_max_line_bytes=50_000)
    assert "50000 bytes" in str(caught[0])


@local_only
@pytest.mark.parametrize("props", [(500, {"error": "boom"}), (200, b"<html>not props</html>")])
def test_a_broken_props_endpoint_does_not_stop_chat(
    faulty: Callable[..., FaultyServer], props: tuple[int, Any]
) -> None:
    status, body = props

    def every(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(
                status, body, content_type="text/html" if isinstance(body, bytes) else "application/json"
            )
        else:
            exchange.reply(200, chat_completion("still here"))

    server = faulty(every=every)
    assert content_of(call("sync", api_base=server.url)) == "still here"


@local_only
def test_a_token_count_from_a_server_without_a_prompt_is_an_api_error(
    faulty: Callable[..., FaultyServer],
) -> None:
    def every(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(200, {"chat_template": "x", "total_slots": 1})
        else:
            exchange.reply(200, {"unexpected": True})

    server = faulty(every=every)
    with pytest.raises(litellm.APIError) as caught:
        litellm_llamafile.count_tokens([{"role": "user", "content": "hi"}], api_base=server.url)
    assert "no prompt" in str(caught.value)
