"""The key is cleaned or refused before use and masked wherever an error could carry it, in any spelling:
headers a server echoes (lowercased, escaped, base64), basic-auth credentials in api_base. Credentials
in api_base are sent as the user meant, the same on both drivers: api_key as Bearer wins, else Basic."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import quote

import litellm
import pytest

from litellm_llamafile.core.redaction import Secrets
from litellm_llamafile.integration.request_guard import public_headers

from .support.calls import MODES, call, content_of, exception_text, raises_typed
from .support.fake_server import Exchange, FaultyServer, echo_authorization

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


PASSWORD = "hunter2-pw-for-the-secrets-tests"


@local_only
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("credentials", ["key", "url", "both"])
def test_a_secret_echoed_in_any_spelling_never_shows(
    faulty: Callable[..., FaultyServer], mode: str, credentials: str
) -> None:
    server = faulty(every=echo_authorization)
    base = server.url.replace("://", f"://alice:{PASSWORD}@") if credentials != "key" else server.url
    key = KEY if credentials != "url" else None
    with raises_typed(litellm.AuthenticationError) as caught:
        call(mode, api_base=base, api_key=key)
    text = exception_text(caught[0])
    assert not Secrets(KEY, PASSWORD).found_in(text)
    assert KEY.lower() not in text.lower() and PASSWORD not in text


@local_only
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("short", ["secret", "pw", "k3y!x"])
def test_a_short_key_echoed_in_base64_never_shows(
    faulty: Callable[..., FaultyServer], mode: str, short: str
) -> None:
    # `llamafile --api-key secret` is how keys look on a laptop: too short for its base64 alone to be
    # told from chance text, so the echoed `Bearer <key>` must be recognised by what it decodes to.
    server = faulty(every=echo_authorization)
    with raises_typed(litellm.AuthenticationError) as caught:
        call(mode, api_base=server.url, api_key=short)
    text = exception_text(caught[0])
    for spelling in (f"Bearer {short}", f"bearer {short}"):
        encoded = base64.b64encode(spelling.encode()).decode()
        assert encoded.rstrip("=") not in text, spelling
    assert not Secrets(short).found_in(text)


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_credentials_in_api_base_never_override_the_key(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    """api_key= is what the user meant the server to get (llamafile --api-key): Bearer, on both drivers,
    and the user:password stays out of the URL the HTTP client sees."""
    server = faulty()
    base = server.url.replace("://", f"://alice:{PASSWORD}@")
    assert content_of(call(mode, api_base=base, api_key=KEY)) == "ok"
    assert {seen.headers["authorization"] for seen in server.requests} == {f"Bearer {KEY}"}
    assert all("@" not in seen.headers["host"] and "alice" not in seen.path for seen in server.requests)


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_credentials_in_api_base_alone_are_sent_as_basic_auth(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty()
    base = server.url.replace("://", f"://alice:{quote(PASSWORD + '@:')}@")  # percent-encoded in the URL
    assert content_of(call(mode, api_base=base)) == "ok"
    basic = base64.b64encode(f"alice:{PASSWORD}@:".encode()).decode()
    assert {seen.headers["authorization"] for seen in server.requests} == {f"Basic {basic}"}


def test_the_proxy_shows_clients_the_server_url_without_its_credentials() -> None:
    """LiteLLM's proxy answers every client with `x-litellm-model-api-base`, the deployment's api_base
    as configured; the adapter's callback replaces it when it holds user:password."""
    assert public_headers(f"http://alice:{PASSWORD}@10.0.0.5:8080?x=1") == {
        "x-litellm-model-api-base": "http://***@10.0.0.5:8080"
    }
    assert public_headers("http://10.0.0.5:8080") is None
