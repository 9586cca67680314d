"""One `Server` per base URL, and under it what was learned about the model it serves.

What the adapter learns about a server (its facts from GET /props, its token counts, whether its own
reply reader refused a reply) holds for one model: the same URL may serve another one later (a llamafile
restarted with another GGUF, llama-swap), or several at once (llama-server's router mode, which picks a
model by the request's `model`). So a Server keeps one `Knowledge` per route (the requested model on a
router, "" otherwise), each tied to the identity of the model it was learned from (`ModelIdentity`: the
GGUF, or alias, and a fingerprint of the chat template).

A change of model is found cheaply:
- before a request, /props is read again when the server has been quiet for `RECHECK_AFTER` seconds
  (no model can be swapped in less: stop, start, load) or a connection to it failed since the last check;
- after a reply, its `model` (llama-server answers with the loaded model's alias or file name) is
  compared with the one learned.
A different identity replaces the route's knowledge: the facts are learned again and the old counts go.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass, field

from ..core.settings import LlamafileSettings
from ..prompt.constraints import CompiledTools
from ..wire.protocol import Flow
from ..wire.transport import AsyncDriver, Pools, SyncDriver
from .probe import ServerInfo, learn_flow, probe_flow
from .token_cache import TokenCache

# Seconds of quiet after which the next request first reads /props again. Replacing the model behind a
# URL takes longer than this (a llama-server start took 6-8 s here with Gemma 3 or Qwen2.5-Coder, and
# about 2 s with SmolLM2), and a recheck costs one small GET, so an agent loop pays it once per pause.
RECHECK_AFTER = 1.0


@dataclass
class Knowledge:
    """What was learned about one model behind a URL."""

    info: ServerInfo
    tokens: TokenCache = field(default_factory=TokenCache)
    # The name its replies give it when that is neither its alias nor the request's model (a server that
    # answers with a fixed name): seen again right after learning anew, so no evidence of another model.
    answers_as: str | None = None
    _reader_refuses: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def reader_refuses(self) -> bool:
        """llama-server's own reader for its template's reply format refused a reply of this model: later
        chat requests go past it (ChatRequest.past_reader), streams included, and cost no failed attempt."""
        with self._lock:
            return self._reader_refuses

    def remember_reader_refuses(self) -> None:
        with self._lock:
            self._reader_refuses = True


@dataclass
class Server:
    """What is known about the server at `api_base`, per model it serves."""

    api_base: str
    pools: Pools = field(default_factory=Pools)
    # Constraints and tool instructions compiled from tools (keyed by what they depend on: any model).
    compiled: CompiledTools = field(default_factory=CompiledTools)
    _router: bool = False  # llama-server's router mode: knowledge per requested model
    _known: dict[str, Knowledge] = field(default_factory=dict)
    _forgot_for: dict[str, str] = field(default_factory=dict)  # route -> the reply name that made it forget
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, model: str) -> str:
        """Which knowledge a request for `model` uses: its own on a router, the one model's otherwise."""
        with self._lock:
            return model if self._router else ""

    def knowledge(self, model: str = "") -> Knowledge | None:
        with self._lock:
            return self._known.get(model if self._router else "")

    @property
    def info(self) -> ServerInfo | None:
        """What GET /props said (of the one model, not on a router), or None before the first probe."""
        known = self.knowledge()
        return known.info if known else None

    @property
    def tokens(self) -> TokenCache:
        """The token counts of the model the server serves (a new, empty cache before the first probe)."""
        known = self.knowledge()
        return known.tokens if known else TokenCache()

    def knowledge_flow(self, model: str = "", *, learn: bool = False) -> Flow[Knowledge]:
        """What is known about the model a request for `model` reaches: at once when it is fresh,
        otherwise (re)learned by probing /props; with `learn`, also what probe conversations rendered
        through /apply-template show (see the module doc for when /props is read again)."""
        known = self.knowledge(model)
        due = self._recheck_due()
        if known is not None and not due and (known.info.facts is not None or not learn):
            return known
        info = yield from probe_flow(self.route(model) or None)
        if info.router:  # a router answers its own /props without ?model=: ask for the model's
            with self._lock:
                self._router = True
            self.pools.close_each = True  # it closes connections as it swaps models (see Pools)
            info = yield from probe_flow(model or None)
        self.pools.answered()  # the server just answered: quiet from now on
        with self._lock:
            route = model if self._router else ""
            known = self._known.get(route)
            if known is None or known.info.identity != info.identity:
                known = self._known[route] = Knowledge(info)  # another model: its facts, no old counts
        if learn and known.info.facts is None:
            learned = yield from learn_flow(known.info)
            with self._lock:
                known.info = learned
        return known

    def info_flow(self, *, learn: bool = False, model: str = "") -> Flow[ServerInfo]:
        """The facts of the model a request for `model` reaches (see knowledge_flow)."""
        return (yield from self.knowledge_flow(model, learn=learn)).info

    def _recheck_due(self) -> bool:
        lost = self.pools.take_lost()
        return lost or self.pools.quiet_for() > RECHECK_AFTER

    def saw_reply(self, model: str, answered_as: object) -> None:
        """A reply's `model` names another model than the one learned for this route (not its alias, nor
        the request's own name echoed back, as some servers do): forget the route, so the next request
        learns again. A server whose replies always give one other name is learned again once, not at
        every request: the same name right after learning anew is how it names its model."""
        self.pools.answered()  # the server just answered: quiet from now on
        with self._lock:
            route = model if self._router else ""
            known = self._known.get(route)
            if known is None or not known.info.model_alias or not isinstance(answered_as, str):
                return
            if not answered_as or answered_as in (known.info.model_alias, model, known.answers_as):
                return
            if self._forgot_for.get(route) == answered_as:
                known.answers_as = answered_as  # learned anew, and it still says so: its own name
                return
            self._forgot_for[route] = answered_as
            del self._known[route]

    def driver(self, settings: LlamafileSettings, model: str) -> SyncDriver:
        return SyncDriver(self.pools, settings, model)

    def async_driver(self, settings: LlamafileSettings, model: str) -> AsyncDriver:
        return AsyncDriver(self.pools, settings, model)

    def forget(self) -> None:
        """Drop what was learned (every model's facts and token counts); connections stay pooled."""
        with self._lock:
            self._known.clear()
            self._forgot_for.clear()
            self._router = False
        self.pools.close_each = False


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

    def adopt(self, server: Server) -> Server:
        """Use `server` for its base URL from now on (one built with its own `Pools`, e.g. a transport
        that is no network socket); the Server it replaces closes its connections."""
        with self._lock:
            previous = self._servers.get(server.api_base)
            self._servers[server.api_base] = server
        if previous is not None and previous is not server:
            previous.pools.close()
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
