"""The key is cleaned or refused before use and masked wherever an error could carry it: headers a server
echoes, basic-auth credentials in api_base."""

from __future__ import annotations

from collections.abc import Callable

import litellm
import pytest

from .support.calls import call, content_of, exception_text
from .support.fake_server import Exchange, FaultyServer

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
KEY = "sk-secret-for-the-secrets-tests-0d41"


@local_only
def test_a_key_read_from_a_file_with_its_newline_is_sent_clean(faulty: Callable[..., FaultyServer]) -> None:
    server = faulty()
    assert content_of(call("sync", api_base=server.url, api_key=f"{KEY}\n")) == "ok"
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {KEY}"


@local_only
def test_a_key_with_control_characters_is_refused_without_showing_it(
    faulty: Callable[..., FaultyServer],
) -> None:
    server = faulty()
    with pytest.raises(litellm.BadRequestError) as caught:
        call("sync", api_base=server.url, api_key=f"{KEY}\r\nX-Injected: 1")
    assert "control characters" in str(caught.value)
    assert KEY not in exception_text(caught.value)
    assert server.requests == []


@local_only
def test_a_key_echoed_in_a_response_header_is_masked(faulty: Callable[..., FaultyServer]) -> None:
    def echo(exchange: Exchange) -> None:
        body = b'{"error": {"code": 401, "message": "no"}}'
        exchange.raw(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
            + f"X-Echo-Authorization: {exchange.seen.headers['authorization']}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    server = faulty(every=echo)
    with pytest.raises(litellm.AuthenticationError) as caught:
        call("sync", api_base=server.url, api_key=KEY)
    assert KEY not in exception_text(caught.value)


@local_only
def test_basic_auth_credentials_in_api_base_never_show(faulty: Callable[..., FaultyServer]) -> None:
    server = faulty(every=lambda exchange: exchange.reply(500, {"error": {"message": "broken"}}))
    with pytest.raises(litellm.InternalServerError) as caught:
        call("sync", api_base=server.url.replace("://", "://alice:hunter2-pw@"))
    text = exception_text(caught.value)
    assert "hunter2-pw" not in text
    assert "***@127.0.0.1" in str(caught.value)
