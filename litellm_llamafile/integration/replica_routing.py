"""Conversation-affine routing over llamafile replicas: each conversation's turns reach the replica that
holds its prompt prefix in cache.

The Router of LiteLLM picks a deployment of a model group per request; with `simple-shuffle` a turn lands
on a random replica and re-prefills the whole history there. This module narrows the Router's healthy
deployments to one, chosen by:

* **the key**: the conversation's stable opening (first system text, first user text, as given), the
  same key as slot affinity inside one server (`conversation_key`);
* **rendezvous (highest random weight) hashing** of the key over the replicas (`rendezvous_order`):
  every proxy computes the same order with no shared state, and removing a replica moves only the
  conversations whose first choice it was;
* **bounded load**: a replica is skipped while it is saturated (this process has as many requests in
  flight there as the server has slots, read once from its `/props`) or in LiteLLM's cooldown; the next
  replica in the hash order takes the turn. When every candidate is saturated, the first one waits in
  the server's own queue, where the prefix is;
* **failover**: a retry of a request never goes back to a replica that already failed it; a replica that
  refused the connection (dead) is put into LiteLLM's own cooldown, so the next turns skip it at once;
  a conversation served away from its first choice remembers that replica as its home (in the
  Router's cache: Redis when `router_settings` has `redis_host`), so it moves once and stays.

It plugs into LiteLLM as a deployment filter (`CustomLogger.async_filter_deployments`), which the Router
runs after its cooldown filter on every async request; its weighted failover and retries keep working
on top (routing_strategy stays `simple-shuffle`, which then picks the one deployment left). In the
proxy: `litellm_settings.callbacks: [litellm_llamafile.proxy.conversation_affinity]` (the
generator writes it). In the SDK: `use_conversation_affinity(router)`, then `await router.acompletion(...)`
(LiteLLM runs deployment filters on the async path only).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import litellm
from litellm.exceptions import APIConnectionError
from litellm.integrations.custom_logger import CustomLogger

from ..core.errors import PROVIDER
from ..core.settings import call_settings, without_userinfo
from ..prompt.conversation import conversation_key
from ..server.servers import SERVERS

HOME_TTL_SECONDS = 3600.0  # how long a moved conversation remembers its new replica
ATTEMPT_TTL_SECONDS = 900.0  # forget a request's bookkeeping after this long (a lost callback)
SLOTS_RETRY_SECONDS = 30.0  # a server whose /props could not be read is asked again after this long
HOME_KEY_PREFIX = "llamafile-affinity-home"


# -- the pure part ----------------------------------------------------------------------------------


def replica_weight(key: int, replica: str) -> int:
    """The rendezvous weight of `replica` for `key`: an independent hash per (key, replica) pair."""
    data = key.to_bytes(8, "big") + replica.encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"llamafile-hrw").digest(), "big")


def rendezvous_order(key: int, replicas: Iterable[str]) -> list[str]:
    """The replicas in preference order for `key`, highest weight first (ties broken by name). Removing a
    replica leaves the relative order of the others unchanged."""
    return sorted(set(replicas), key=lambda replica: (-replica_weight(key, replica), replica))


def choose_replica(
    order: Sequence[str],
    *,
    home: str | None = None,
    unavailable: Collection[str] = (),
    saturated: Collection[str] = (),
) -> str | None:
    """The replica for one request: the conversation's home if it has one, else the order; skipping the
    unavailable (cooled down, failed this request) and then the saturated ones. When every available replica
    is saturated, the first available one (the request queues where the prefix is). None if none is left."""
    ranked = [home, *(r for r in order if r != home)] if home in order else list(order)
    available = [replica for replica in ranked if replica not in unavailable]
    if not available:
        return None
    return next((replica for replica in available if replica not in saturated), available[0])


# -- the LiteLLM hook ---------------------------------------------------------------------------------


def _params(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    params = deployment.get("litellm_params")
    return params if isinstance(params, Mapping) else {}


def _deployment_id(deployment: Mapping[str, Any]) -> str:
    info = deployment.get("model_info")
    return str(info.get("id")) if isinstance(info, Mapping) and info.get("id") is not None else ""


def replica_name(deployment: Mapping[str, Any]) -> str:
    """What identifies a replica in the hash: its server URL (the same on every proxy whatever the yaml's
    other fields) without user:password (it is kept in the Router's cache, Redis included), else
    LiteLLM's deployment id."""
    base = _params(deployment).get("api_base")
    if isinstance(base, str) and base:
        return without_userinfo(base.rstrip("/").removesuffix("/v1"))
    return _deployment_id(deployment)


def _is_adapter_deployment(deployment: Mapping[str, Any]) -> bool:
    model = _params(deployment).get("model")
    return isinstance(model, str) and model.startswith(f"{PROVIDER}/")


def _metadata(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    params = kwargs.get("litellm_params")
    metadata = params.get("metadata") if isinstance(params, Mapping) else None
    return metadata if isinstance(metadata, Mapping) else {}


# Where a request's attempts are tied together: a random id the filter issues, kept in the request's
# metadata (which LiteLLM carries from the Router's retries into the logging callbacks). A client-chosen
# id (the proxy takes `x-litellm-call-id` from the client) must not be it: twelve concurrent turns that
# shared one call id looked like one request retried twelve times, so the in-flight count never grew.
REQUEST_KEY = "llamafile_affinity_request"


class _Attempts:
    """This process's open attempts, by the request id the filter issued: the replica each is on and
    the conversation it serves, and the replicas that failed each request. An id this table never
    issued (or one issued for another conversation) is no attempt of ours: a client cannot join or
    close another request's attempt. Entries older than ATTEMPT_TTL_SECONDS are dropped (a request
    LiteLLM never reported back)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[str, int, float]] = {}  # request -> (replica, conversation, since)
        self._tried: dict[
            str, tuple[set[str], int, float]
        ] = {}  # request -> (failed it, conversation, since)

    def in_flight(self, replica: str) -> int:
        return sum(1 for name, _, _ in self._open.values() if name == replica)

    def request(self, claimed: object, conversation: int, now: float) -> tuple[str, set[str]]:
        """The request being routed, and the replicas that failed it: the claimed id when this table
        issued it for this conversation (a retry: routed again while its last attempt is open means that
        attempt failed), else a fresh id."""
        for table in (self._open, self._tried):
            for old in [r for r, entry in table.items() if now - entry[-1] > ATTEMPT_TTL_SECONDS]:
                del table[old]
        known = isinstance(claimed, str) and any(
            claimed in table and table[claimed][1] == conversation for table in (self._open, self._tried)
        )
        if not known:
            return uuid.uuid4().hex, set()
        assert isinstance(claimed, str)
        self.failed(claimed, self.finished(claimed), now)
        return claimed, self._tried[claimed][0] if claimed in self._tried else set()

    def start(self, request: str, replica: str, conversation: int, now: float) -> None:
        self._open[request] = (replica, conversation, now)

    def finished(self, request: object) -> tuple[str, int] | None:
        """Ends a request's open attempt: the replica it was on and its conversation."""
        entry = self._open.pop(request, None) if isinstance(request, str) else None
        return (entry[0], entry[1]) if entry else None

    def failed(self, request: str, attempt: tuple[str, int] | None, now: float) -> None:
        """The attempt `finished` ended failed: its replica is not tried again for this request."""
        if attempt is None:
            return
        replica, conversation = attempt
        tried, _, since = self._tried.get(request, (set(), conversation, now))
        self._tried[request] = ({*tried, replica}, conversation, since)

    def succeeded(self, request: object) -> None:
        if isinstance(request, str):
            self._tried.pop(request, None)


class _SlotCounts:
    """Each replica's slot count, from what the adapter's Server learned from `/props` (read once; None
    while unknown, asked again after SLOTS_RETRY_SECONDS)."""

    def __init__(self, known: Mapping[str, int] | None = None) -> None:
        self._slots: dict[str, tuple[int | None, float]] = {  # replica -> (total slots, when read)
            replica.rstrip("/"): (count, 0.0) for replica, count in (known or {}).items()
        }

    async def total(self, deployment: Mapping[str, Any]) -> int | None:
        replica = replica_name(deployment)
        known = self._slots.get(replica)
        now = time.monotonic()
        if known is not None and (known[0] is not None or now - known[1] < SLOTS_RETRY_SECONDS):
            return known[0]
        params = _params(deployment)
        total: int | None = None
        try:  # one probe per server, no retries here
            base = params.get("api_base")
            settings = call_settings(
                api_base=base if isinstance(base, str) else replica,
                api_key=params.get("api_key"),
                timeout=2.0,
                options={"llamafile_connect_retries": 0, "llamafile_loading_wait": 0},
            )
            server = SERVERS.get(settings.api_base)
            info = await server.async_driver(settings, "").run(server.info_flow())
            total = info.total_slots if info.total_slots and info.total_slots > 0 else None
        except Exception:  # unknown: never saturated; asked again after SLOTS_RETRY_SECONDS
            total = None
        self._slots[replica] = (total, now)
        return total


class ConversationAffinity(CustomLogger):
    """The deployment filter (see the module docstring). One instance per process: it keeps this
    process's in-flight count per replica and each request's failed replicas. `router` is the Router it
    serves; None means the proxy's own Router."""

    def __init__(
        self,
        router: Any | None = None,
        *,
        home_ttl: float = HOME_TTL_SECONDS,
        slot_counts: Mapping[str, int] | None = None,
    ) -> None:
        """`slot_counts` (replica URL -> slots) spares the `/props` read for servers whose count is known."""
        super().__init__()
        self.router = router
        self.home_ttl = home_ttl
        self._attempts = _Attempts()
        self._slots = _SlotCounts(slot_counts)

    def _current_router(self) -> Any | None:
        if self.router is not None:
            return self.router
        try:
            from litellm.proxy import proxy_server
        except ImportError:
            return None
        return getattr(proxy_server, "llm_router", None)

    def in_flight(self, replica: str) -> int:
        return self._attempts.in_flight(replica)

    async def _home(self, model: str, key: int) -> str | None:
        router = self._current_router()
        if router is None:
            return None
        home = await router.cache.async_get_cache(key=f"{HOME_KEY_PREFIX}:{model}:{key:016x}")
        return home if isinstance(home, str) else None

    async def _set_home(self, model: str, key: int, replica: str) -> None:
        router = self._current_router()
        if router is not None:
            await router.cache.async_set_cache(
                key=f"{HOME_KEY_PREFIX}:{model}:{key:016x}", value=replica, ttl=self.home_ttl
            )

    # -- the hooks LiteLLM calls -----------------------------------------------------------------

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list[Any],
        messages: Any,
        request_kwargs: dict[str, Any] | None = None,
        parent_otel_span: Any = None,
    ) -> list[Any]:
        deployments = [d for d in healthy_deployments if isinstance(d, Mapping)]
        if not messages or len(deployments) != len(healthy_deployments) or not deployments:
            return healthy_deployments
        if not all(_is_adapter_deployment(d) for d in deployments):
            return healthy_deployments
        try:
            key = conversation_key(messages)
        except Exception:  # a malformed conversation: the adapter raises the typed error for it
            return healthy_deployments
        kwargs = request_kwargs if request_kwargs is not None else {}
        metadata = kwargs.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            return healthy_deployments
        now = time.monotonic()
        request, tried = self._attempts.request(metadata.get(REQUEST_KEY), key, now)
        metadata[REQUEST_KEY] = request  # retries and the logging callbacks carry the metadata on
        by_replica = {replica_name(d): d for d in deployments}
        excluded_ids = {
            str(i)
            for field in ("_excluded_deployment_ids", "_retry_skipped_deployment_ids")
            for i in (kwargs.get(field) or ())
        }
        unavailable = {r for r, d in by_replica.items() if _deployment_id(d) in excluded_ids} | tried
        if unavailable >= set(by_replica):
            unavailable = set()  # every replica failed this request once: let the Router's own limits decide
        totals = {replica: await self._slots.total(d) for replica, d in by_replica.items()}
        home = await self._home(model, key)
        # From here to start() nothing awaits: concurrent requests see each other's attempts.
        saturated = {
            replica
            for replica, total in totals.items()
            if total is not None and self._attempts.in_flight(replica) >= total
        }
        chosen = choose_replica(
            rendezvous_order(key, by_replica), home=home, unavailable=unavailable, saturated=saturated
        )
        if chosen is None:
            return healthy_deployments
        self._attempts.start(request, chosen, key, now)
        return [by_replica[chosen]]

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        request = _metadata(kwargs).get(REQUEST_KEY)
        attempt = self._attempts.finished(request)
        self._attempts.succeeded(request)
        model = _metadata(kwargs).get("model_group")
        if attempt is None or not isinstance(model, str):
            return
        replica, key = attempt
        router = self._current_router()
        group = router.get_model_list(model_name=model) if router is not None else None
        replicas = [replica_name(d) for d in group or [] if isinstance(d, Mapping)]
        home = await self._home(model, key)
        preferred = home if home in replicas else next(iter(rendezvous_order(key, replicas)), None)
        if replica != preferred:  # moved (its replica died, was cooled down or saturated): stay there
            await self._set_home(model, key, replica)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        request = _metadata(kwargs).get(REQUEST_KEY)
        attempt = self._attempts.finished(request)
        if attempt is None or not isinstance(request, str):
            return
        self._attempts.failed(request, attempt, time.monotonic())
        error = kwargs.get("exception")
        router = self._current_router()
        model_id = _metadata(kwargs).get("model_info", {}).get("id")
        if isinstance(error, APIConnectionError) and router is not None and isinstance(model_id, str):
            # LiteLLM never cools a deployment down for a connection error; for a replica that refused the
            # connection, skipping it for cooldown_time (on every proxy sharing the Redis) is what we want.
            router.cooldown_cache.add_deployment_to_cooldown(
                model_id=model_id,
                original_exception=error,
                exception_status=503,
                cooldown_time=getattr(router, "cooldown_time", None),
            )


def use_conversation_affinity(router: Any) -> ConversationAffinity:
    """SDK: route `router`'s llamafile replica groups by conversation (for `await router.acompletion`)."""
    strategy = ConversationAffinity(router)
    litellm.callbacks.append(strategy)
    return strategy
