"""Through the real LiteLLM proxy (`litellm --config`), in front of misbehaving servers on loopback
(issue 24): `timeout=` is a deadline however slowly a server sends its headers, and a key or a password
a server echoes in any spelling reaches the proxy's client in none (status line, headers, body).

Live only: it starts a proxy process (no llama-server is needed: every server here is a FaultyServer)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from litellm_llamafile.cli.proxy_config import render_config, running_proxy
from litellm_llamafile.core.redaction import Secrets

from .support.fake_server import Exchange, FaultyServer, answer_chat, echo_authorization

pytestmark = [pytest.mark.live, pytest.mark.block_network(allowed_hosts=["127.0.0.1"])]

KEY = "sk-proxy-hardening-key-5e11"
PASSWORD = "proxy-hardening-pw-93c"
KEY_ENV = "HARDENING_TEST_KEY"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 100 + b"\r\n"


class Trickle:
    """Sends the head of a reply one byte every 0.2 s (30 s in all), never a body."""

    def __init__(self) -> None:
        self.sent: list[int] = []

    def __call__(self, exchange: Exchange) -> None:
        exchange.trickle(HEAD, 0.2, self.sent)


@dataclass
class Fleet:
    url: str
    key: str
    trickle: Trickle
    servers: dict[str, FaultyServer]

    def post(self, model: str, **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, **extra}
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=headers, timeout=120)


def _config(bases: list[tuple[str, str]]) -> str:
    """The generated yaml, with a 2 s timeout for `trickle` and no key for `basic`."""
    config = yaml.safe_load(render_config(bases, api_key_env=KEY_ENV, num_retries=0))
    for deployment in config["model_list"]:
        params = deployment["litellm_params"]
        if deployment["model_name"] == "trickle":
            params["timeout"] = 2
        if deployment["model_name"] == "basic":
            del params["api_key"]
    return str(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    work = tmp_path_factory.mktemp("hardening-proxy")
    trickle = Trickle()
    servers = {
        "trickle": FaultyServer(trickle),
        "echo": FaultyServer(answer_chat("never"), every=echo_authorization),
        "basic-echo": FaultyServer(answer_chat("never"), every=echo_authorization),
        "keyed": FaultyServer(answer_chat("ok")),
        "basic": FaultyServer(answer_chat("ok")),
    }
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.callback(server.close)
        with_password = {"basic-echo", "keyed", "basic"}
        bases = [
            (name, s.url.replace("://", f"://alice:{PASSWORD}@") if name in with_password else s.url)
            for name, s in servers.items()
        ]
        config = _config(bases)
        path = work / "proxy.yaml"
        path.write_text(config)
        url, key = stack.enter_context(running_proxy(path, env={KEY_ENV: KEY}, log=work / "proxy.log"))
        yield Fleet(url, key, trickle, servers)


@pytest.mark.parametrize("stream", [False, True])
def test_a_server_trickling_its_headers_is_a_timeout_through_the_proxy(fleet: Fleet, stream: bool) -> None:
    fleet.trickle.sent.clear()
    response = fleet.post("trickle", stream=stream)
    assert response.status_code == 408, response.text
    assert len(fleet.trickle.sent) < len(HEAD) // 2  # cut long before the head was complete


def _shown(response: httpx.Response) -> list[str]:
    return [response.reason_phrase, *(f"{k}: {v}" for k, v in response.headers.items()), response.text]


@pytest.mark.parametrize("model", ["echo", "basic-echo"])
def test_an_echoed_key_or_password_reaches_the_client_in_no_spelling(fleet: Fleet, model: str) -> None:
    response = fleet.post(model)
    assert response.status_code == 401, response.text
    shown = _shown(response)
    assert not any(Secrets(KEY, PASSWORD).found_in(text) for text in shown), shown
    assert not any(KEY.lower() in text.lower() or PASSWORD in text for text in shown)
    assert any(k.startswith("llm_provider-x-echo") for k in response.headers)  # the echo was forwarded


def test_credentials_in_api_base_are_sent_as_the_user_meant(fleet: Fleet) -> None:
    """`keyed` has a key and user:password in its URL: its server gets the key as Bearer. `basic` has
    only the URL's: Basic. No URL the servers see holds them, and no password reaches the client."""
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    for model, expected in [("keyed", f"Bearer {KEY}"), ("basic", f"Basic {basic}")]:
        response = fleet.post(model)
        assert response.status_code == 200, response.text
        leaks = [text for text in _shown(response) if Secrets(KEY, PASSWORD).found_in(text)]
        assert not leaks
        seen = fleet.servers[model].requests
        assert seen and {request.headers["authorization"] for request in seen} == {expected}
        assert all("alice" not in request.path + request.headers["host"] for request in seen)
