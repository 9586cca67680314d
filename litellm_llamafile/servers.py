"""One `Server` per base URL: everything the adapter knows about that server, in one object.

A Server owns what was learned from it (`ServerInfo`, from GET /props, once), its token-count caches and
its connection pools. All Servers live in one registry with one lock; `forget()` drops what was learned
(after a server restarts with another model, or between tests).
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass, field

from .probe import ServerInfo, learn_flow, probe_flow
from .protocol import Flow
from .settings import LlamafileSettings
from .tokens import TokenCache
from .transformation import CompiledTools
from .transport import AsyncDriver, Pools, SyncDriver


@dataclass
class Server:
    """What is known about the server at `api_base`."""

    api_base: str
    pools: Pools = field(default_factory=Pools)
    tokens: TokenCache = field(default_factory=TokenCache)
    compiled: CompiledTools = field(default_factory=CompiledTools)
    _info: ServerInfo | None = None
    _reader_refuses: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def info(self) -> ServerInfo | None:
        """What GET /props said, or None before the first probe."""
        with self._lock:
            return self._info

    def info_flow(self, *, learn: bool = False) -> Flow[ServerInfo]:
        """The server's facts: known ones at once, otherwise learned (and kept) by probing; with `learn`,
        also what probe conversations rendered through /apply-template show."""
        known = self.info
        if known is not None and (known.facts is not None or not learn):
            return known
        learned = known if known is not None else (yield from probe_flow())
        if learn:
            learned = yield from learn_flow(learned)
        with self._lock:
            if self._info is None or (learn and self._info.facts is None):
                self._info = learned
            return self._info

    @property
    def reader_refuses(self) -> bool:
        """llama-server's own reader for its template's reply format refused a reply of this model: later
        chat requests go past it (ChatRequest.past_reader), streams included, and cost no failed attempt."""
        with self._lock:
            return self._reader_refuses

    def remember_reader_refuses(self) -> None:
        with self._lock:
            self._reader_refuses = True

    def driver(self, settings: LlamafileSettings, model: str) -> SyncDriver:
        return SyncDriver(self.pools, settings, model)

    def async_driver(self, settings: LlamafileSettings, model: str) -> AsyncDriver:
        return AsyncDriver(self.pools, settings, model)

    def forget(self) -> None:
        """Drop what was learned (server facts and token counts); connections stay pooled."""
        with self._lock:
            self._info = None
            self._reader_refuses = False
        self.tokens.clear()


class ServerRegistry:
    """The process's Servers, one per base URL."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[str, Server] = {}

    def get(self, api_base: str) -> Server:
        with self._lock:
            server = self._servers.get(api_base)
            if server is None:
                server = self._servers[api_base] = Server(api_base)
            return server

    def forget(self, api_base: str | None = None) -> None:
        """Forget one server's facts, or every server's."""
        with self._lock:
            chosen = list(self._servers.values()) if api_base is None else [self._servers.get(api_base)]
        for server in chosen:
            if server is not None:
                server.forget()

    def close(self) -> None:
        with self._lock:
            servers = list(self._servers.values())
        for server in servers:
            server.pools.close()


SERVERS = ServerRegistry()
atexit.register(SERVERS.close)


def server_for(settings: LlamafileSettings) -> Server:
    return SERVERS.get(settings.api_base)
