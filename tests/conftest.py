"""Test tiers.

    pytest                 replay: cassettes only, no server, network blocked (the default)
    pytest --live          the same tests (plus `live`-only fault tests) against real llama.cpp servers
    pytest -m live         the same as `pytest --live -m "vcr or live"`: just the tests that use a server
    pytest --record        re-record the cassettes from real servers (implies --live)
    pytest -m live --slow  also the slow tier: more checks on the slower real models (not in CI)
    LLAMAFILE_LIVE=1       same as --live

Live servers are started from the registries (litellm_llamafile.harness.embedded_server) and stopped at
session end;
LLAMAFILE_API_BASE points the ChatML tier at a server you already run instead.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

# Before LiteLLM is imported anywhere: no price-map download at import time.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from litellm_llamafile.server import servers as servers_module
from litellm_llamafile.server.servers import SERVERS
from litellm_llamafile.wire.protocol import HttpCall
from litellm_llamafile.wire.transport import SyncDriver

from .support.fake_server import Exchange, FaultyServer, answer_chat
from .support.servers import CANONICAL, CASSETTES, RECORDING_API_KEY, SentRequest, Servers


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="run against real llama.cpp servers")
    parser.addoption("--record", action="store_true", help="re-record cassettes from real servers")
    parser.addoption("--slow", action="store_true", help="also run the slow tier (more on the slower models)")


def is_live(config: pytest.Config) -> bool:
    return bool(
        config.getoption("--live")
        or config.getoption("--record")
        or os.environ.get("LLAMAFILE_LIVE") == "1"
        or _selects_live(config)
    )


def _selects_live(config: pytest.Config) -> bool:
    """Whether `-m` asks for the live tier (`-m live`, `-m "vcr or live"`; not `-m "not live"`)."""
    from _pytest.mark.expression import Expression

    expression = config.getoption("markexpr", "") or ""
    return bool(expression) and Expression.compile(expression).evaluate(lambda name, **_: name == "live")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: in the live tier every server test is `live`
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not is_live(config):
        skip = pytest.mark.skip(reason="needs a real server: run with -m live (or --live)")
        for item in items:
            if "live" in item.keywords:
                item.add_marker(skip)
        return
    slow = pytest.mark.skip(reason="slow tier: run with --slow")
    for item in items:
        if item.get_closest_marker("vcr") is not None:
            item.add_marker(pytest.mark.live)
        if "slow" in item.keywords and not config.getoption("--slow"):
            item.add_marker(slow)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--record"):
        config.option.record_mode = "rewrite"
        config.option.block_network = False
    elif is_live(config):
        config.option.disable_recording = True
        config.option.block_network = False
    else:
        config.option.record_mode = "none"
        config.option.block_network = True


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> Iterator[Servers]:
    pool = Servers(is_live(request.config))
    yield pool
    pool.stop()  # also runs when tests fail; EmbeddedServer children die with this process anyway


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest) -> bool:
    return is_live(request.config)


@pytest.fixture(scope="session", autouse=True)
def _no_quiet_rechecks_in_replay(live: bool) -> Iterator[None]:
    """In replay no server can change its model, and a slow step on a loaded machine must not add a
    /props recheck the cassette does not hold: the quiet-time recheck is for the live tier."""
    saved = servers_module.RECHECK_AFTER
    if not live:
        servers_module.RECHECK_AFTER = math.inf
    yield
    servers_module.RECHECK_AFTER = saved


@pytest.fixture(autouse=True)
def _fresh_adapter_state() -> Iterator[None]:
    """Each test sees an unprobed server and an empty token cache, so cassettes never depend on order."""
    litellm_llamafile.register()
    SERVERS.forget()
    yield


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[SentRequest]:
    """Every request the adapter sends (path, JSON body, headers), replayed or live: a spy on the one
    HTTP module; the real request still goes out."""
    calls: list[SentRequest] = []
    send = SyncDriver.send
    events = SyncDriver.events

    def spy_send(self: SyncDriver, call: HttpCall) -> Any:
        calls.append(SentRequest(call.path, call.body, self.headers()))
        return send(self, call)

    def spy_events(self: SyncDriver, call: HttpCall) -> Any:
        calls.append(SentRequest(call.path, call.body, self.headers()))
        return events(self, call)

    monkeypatch.setattr(SyncDriver, "send", spy_send)
    monkeypatch.setattr(SyncDriver, "events", spy_events)
    return calls


# -- cassettes ------------------------------------------------------------------------------------


def _json_or_raw(body: Any) -> Any:
    if not body:  # no body: None from aiohttp, b"" from httpx
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return body


def _same_json_body(r1: Any, r2: Any) -> None:
    assert _json_or_raw(r1.body) == _json_or_raw(r2.body)


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(CASSETTES / request.module.__name__.split(".")[-1])


@pytest.fixture(scope="session")
def vcr_config(servers: Servers) -> dict[str, Any]:
    def canonical_request(request: Any) -> Any:
        for url, role in servers.url_to_role.items():
            if request.uri.startswith(url):
                request.uri = CANONICAL[role] + request.uri[len(url) :]
        request.headers.pop("Authorization", None)
        request.headers.pop("authorization", None)
        request.headers.pop("X-Api-Key", None)
        return request

    def scrubbed_response(response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body", {}).get("string")
        if isinstance(body, bytes) and RECORDING_API_KEY.encode() in body:
            response["body"]["string"] = body.replace(RECORDING_API_KEY.encode(), b"***")
        return response

    return {
        "filter_headers": ["authorization", "x-api-key"],
        "before_record_request": canonical_request,
        "before_record_response": scrubbed_response,
        "match_on": ["method", "host", "port", "path", "query", "json_body"],
        "decode_compressed_response": True,
    }


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    vcr.register_matcher("json_body", _same_json_body)


# -- fake and own servers ---------------------------------------------------------------------------


@pytest.fixture
def faulty() -> Iterator[Callable[..., FaultyServer]]:
    started: list[FaultyServer] = []

    def start(chat: Callable[[Exchange], None] | None = None, **kwargs: Any) -> FaultyServer:
        server = FaultyServer(chat or answer_chat("ok"), **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def own_server() -> Iterator[Callable[..., EmbeddedServer]]:
    """Real llama-servers this test alone uses (and may kill); always stopped."""
    started: list[EmbeddedServer] = []

    def start(**kwargs: Any) -> EmbeddedServer:
        server = EmbeddedServer(**kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A URL where nothing listens: its port is bound but never listened on, so every connect is refused
    and no other process can take the port while the test runs."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"
