"""Conversation-affine routing over replicas: the hashing and the Router filter without servers, then the
real LiteLLM proxy (two instances sharing a real redis-server) in front of two real llama-servers."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import litellm
import pytest
from openai import OpenAI

from litellm_llamafile.cli.proxy_config import RedisSettings, render_config, running_proxy
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from litellm_llamafile.integration.replica_routing import (
    REQUEST_KEY,
    ConversationAffinity,
    choose_replica,
    conversation_key,
    rendezvous_order,
    use_conversation_affinity,
)

from .support.fake_server import Exchange, FaultyServer, answer_chat
from .support.redis_server import INSTALL_HINT, redis_server_binary, running_redis

REPLICAS = [f"http://10.0.0.{n}:8080" for n in range(1, 6)]
local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])


def opening(number: int, system: str = "You are a research agent.") -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": f"Task {number}: look it up."}]


# -- the key and the hash ----------------------------------------------------------------------------


def test_the_key_is_the_conversations_opening_and_survives_appended_turns() -> None:
    first = opening(1)
    later = [
        *first,
        {"role": "assistant", "content": None, "tool_calls": [_call("web_search", '{"query": "x"}')]},
        {"role": "tool", "tool_call_id": "c1", "content": "results"},
        {"role": "user", "content": "Now summarise."},
    ]
    assert conversation_key(later) == conversation_key(first)
    assert conversation_key(opening(2)) != conversation_key(first)
    assert conversation_key(opening(1, system="Another agent.")) != conversation_key(first)


def _call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


def test_the_order_is_stable_and_independent_of_how_replicas_are_listed() -> None:
    key = conversation_key(opening(7))
    order = rendezvous_order(key, REPLICAS)
    assert sorted(order) == sorted(REPLICAS)
    assert rendezvous_order(key, reversed(REPLICAS)) == order
    assert rendezvous_order(key, REPLICAS) == order


def test_removing_a_replica_moves_only_its_own_conversations_to_their_second_choice() -> None:
    removed = REPLICAS[2]
    keys = [conversation_key(opening(n)) for n in range(2000)]
    moved = 0
    for key in keys:
        before = rendezvous_order(key, REPLICAS)
        after = rendezvous_order(key, [r for r in REPLICAS if r != removed])
        assert after == [r for r in before if r != removed]  # the others keep their relative order
        if before[0] == removed:
            moved += 1
            assert after[0] == before[1]
        else:
            assert after[0] == before[0]
    assert 0 < moved < len(keys) / 3  # about 1/5 of them: only the removed replica's share


@pytest.mark.parametrize("count", [2, 3, 5])
def test_conversations_spread_evenly(count: int) -> None:
    replicas = REPLICAS[:count]
    firsts = Counter(rendezvous_order(conversation_key(opening(n)), replicas)[0] for n in range(3000))
    assert set(firsts) == set(replicas)
    assert max(firsts.values()) / min(firsts.values()) < 1.2


# -- bounded load ------------------------------------------------------------------------------------


def test_a_saturated_or_unavailable_replica_passes_the_turn_to_the_next_in_order() -> None:
    order = ["a", "b", "c"]
    assert choose_replica(order) == "a"
    assert choose_replica(order, saturated={"a"}) == "b"
    assert choose_replica(order, unavailable={"a"}, saturated={"b"}) == "c"
    # All saturated: the request queues on the first available one, where its prefix is.
    assert choose_replica(order, unavailable={"a"}, saturated={"b", "c"}) == "b"
    assert choose_replica(order, unavailable={"a", "b", "c"}) is None


def test_a_moved_conversation_stays_at_its_home_while_the_home_can_take_it() -> None:
    order = ["a", "b", "c"]
    assert choose_replica(order, home="c") == "c"
    assert choose_replica(order, home="c", saturated={"c"}) == "a"
    assert choose_replica(order, home="gone") == "a"  # a home no longer in the group is ignored


# -- the Router filter (a real litellm.Router, no request sent) ----------------------------------------


def router_for(bases: list[str], model: str = "llamafile/pool") -> litellm.Router:
    return litellm.Router(
        model_list=[{"model_name": "pool", "litellm_params": {"model": model, "api_base": b}} for b in bases]
    )


def route(strategy: ConversationAffinity, router: litellm.Router, messages: Any, **kwargs: Any) -> list[str]:
    """One new request through the filter (its kwargs copied, as every request has its own)."""
    return route_request(strategy, router, messages, copy.deepcopy(kwargs))


def route_request(
    strategy: ConversationAffinity, router: litellm.Router, messages: Any, request: dict[str, Any]
) -> list[str]:
    chosen = asyncio.run(
        strategy.async_filter_deployments(
            model="pool",
            healthy_deployments=router.get_model_list(model_name="pool") or [],
            messages=messages,
            request_kwargs=request,
        )
    )
    return [d["litellm_params"]["api_base"] for d in chosen]


def test_the_filter_leaves_one_replica_the_conversations_first_choice() -> None:
    bases = REPLICAS[:3]
    router = router_for(bases)
    strategy = ConversationAffinity(router, slot_counts=dict.fromkeys(bases, 100))  # never saturated
    for number in range(6):
        first = rendezvous_order(conversation_key(opening(number)), bases)[0]
        assert route(strategy, router, opening(number)) == [first]


def test_the_filter_skips_replicas_the_router_excluded_after_a_failure() -> None:
    bases = REPLICAS[:2]
    router = router_for(bases)
    strategy = ConversationAffinity(router, slot_counts=dict.fromkeys(bases, 4))
    messages = opening(3)
    first, second = rendezvous_order(conversation_key(messages), bases)
    first_id = next(
        d["model_info"]["id"] for d in router.model_list if d["litellm_params"]["api_base"] == first
    )
    assert route(strategy, router, messages, _excluded_deployment_ids=[first_id]) == [second]


def test_the_filter_spills_to_the_next_replica_when_the_first_has_every_slot_busy() -> None:
    bases = REPLICAS[:2]
    router = router_for(bases)
    strategy = ConversationAffinity(router, slot_counts=dict.fromkeys(bases, 1))
    messages = opening(5)
    first, second = rendezvous_order(conversation_key(messages), bases)
    assert route(strategy, router, messages) == [first]  # still in flight
    assert route(strategy, router, messages) == [second]
    assert strategy.in_flight(first) == strategy.in_flight(second) == 1


def test_a_retry_of_the_same_request_goes_to_the_next_replica() -> None:
    bases = REPLICAS[:2]
    router = router_for(bases)
    strategy = ConversationAffinity(router, slot_counts=dict.fromkeys(bases, 4))
    messages = opening(8)
    first, second = rendezvous_order(conversation_key(messages), bases)
    request: dict[str, Any] = {}  # the Router routes a retry with the request's own kwargs
    assert route_request(strategy, router, messages, request) == [first]
    assert route_request(strategy, router, messages, request) == [second]  # the first attempt failed
    assert strategy.in_flight(first) == 0


def test_requests_sharing_a_client_chosen_id_are_each_counted() -> None:
    """A proxy client picks `x-litellm-call-id` (and may send metadata): twelve concurrent turns under
    one id are twelve requests in flight, not one request retried."""
    bases = REPLICAS[:2]
    router = router_for(bases)
    strategy = ConversationAffinity(router, slot_counts=dict.fromkeys(bases, 4))
    messages = opening(5)
    first, second = rendezvous_order(conversation_key(messages), bases)
    claimed = {"litellm_call_id": "chosen-by-client", "metadata": {REQUEST_KEY: "chosen-by-client"}}
    chosen = Counter(route(strategy, router, messages, **claimed)[0] for _ in range(12))
    assert chosen == {first: 8, second: 4}  # four slots each; then the first choice queues the rest
    assert strategy.in_flight(first) + strategy.in_flight(second) == 12


@local_only
def test_a_real_router_spreads_turns_sharing_a_call_id_by_load(faulty: Callable[..., FaultyServer]) -> None:
    """Through litellm.Router and real HTTP: twelve concurrent turns of one conversation under one
    client-chosen call id fill the first choice's four slots, then the second's; every attempt is closed
    by LiteLLM's callbacks once answered."""
    release = threading.Event()

    def held(exchange: Exchange) -> None:
        release.wait(timeout=20)
        answer_chat("ok")(exchange)

    servers = [faulty(held, props={"total_slots": 4}) for _ in range(2)]
    router = router_for([server.url for server in servers])
    strategy = use_conversation_affinity(router)

    async def turns() -> list[int]:
        calls = [
            router.acompletion(model="pool", messages=opening(1), litellm_call_id="chosen-by-client")
            for _ in range(12)
        ]
        tasks = [asyncio.ensure_future(c) for c in calls]
        for _ in range(400):  # until every turn reached a server (or 20 s)
            if sum(len(server.chat_requests) for server in servers) >= 12:
                break
            await asyncio.sleep(0.05)
        arrived = sorted(len(server.chat_requests) for server in servers)
        release.set()
        await asyncio.gather(*tasks)
        for _ in range(100):  # LiteLLM runs its success callbacks in tasks of their own
            if not any(strategy.in_flight(server.url) for server in servers):
                break
            await asyncio.sleep(0.05)
        return arrived

    try:
        assert asyncio.run(turns()) == [4, 8]
        assert [strategy.in_flight(server.url) for server in servers] == [0, 0]
        assert not any(REQUEST_KEY.encode() in seen.body for server in servers for seen in server.requests)
    finally:
        litellm.callbacks.remove(strategy)


def test_groups_that_are_not_llamafile_replicas_are_left_alone() -> None:
    router = router_for(REPLICAS[:2], model="openai/gpt-4o")
    strategy = ConversationAffinity(router, slot_counts=dict.fromkeys(REPLICAS[:2], 4))
    assert sorted(route(strategy, router, opening(1))) == REPLICAS[:2]
    llamafile_router = router_for(REPLICAS[:2])
    assert sorted(route(strategy, llamafile_router, None)) == REPLICAS[:2]  # no messages: nothing to key on


# -- live: two proxies, one Redis, two llama-servers ---------------------------------------------------


@dataclass
class Fleet:
    replicas: list[EmbeddedServer]
    proxies: list[tuple[str, str]]  # (url, master key)

    def client(self, proxy: int) -> OpenAI:
        url, key = self.proxies[proxy]
        return OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)  # the proxy alone must cope

    @property
    def bases(self) -> list[str]:
        return [server.base_url for server in self.replicas]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if redis_server_binary() is None:
        pytest.skip(INSTALL_HINT)
    work = tmp_path_factory.mktemp("replicas")
    with contextlib.ExitStack() as stack:
        replicas = []
        for _ in range(2):
            server = EmbeddedServer(slots=2)
            stack.callback(server.stop)
            replicas.append(server.start())
        redis_url = stack.enter_context(running_redis(work))
        config = work / "proxy.yaml"
        config.write_text(
            render_config(
                [("pool", server.base_url) for server in replicas],
                cooldown_time=120,  # longer than any turn on a loaded machine: the dead replica stays out
                redis=RedisSettings.parse(redis_url),
            )
        )
        proxies = [stack.enter_context(running_proxy(config, log=work / f"proxy-{n}.log")) for n in range(2)]
        yield Fleet(replicas, proxies)


def turn(fleet: Fleet, proxy: int, messages: list[Any]) -> tuple[str, dict[str, str]]:
    """One turn through one proxy; appends the reply; returns the replica that answered and the headers."""
    raw = fleet.client(proxy).chat.completions.with_raw_response.create(
        model="pool", messages=messages, max_tokens=8, temperature=0
    )
    reply = raw.parse().choices[0].message
    assert reply.content is not None
    messages += [{"role": "assistant", "content": reply.content}, {"role": "user", "content": "Go on."}]
    base = raw.headers.get("x-litellm-model-api-base")
    assert isinstance(base, str), dict(raw.headers)
    return base.rstrip("/").removesuffix("/v1"), dict(raw.headers)


def conversations_preferring(bases: list[str], replica: str, count: int, start: int = 0) -> list[int]:
    found = [
        n
        for n in range(start, start + 200)
        if rendezvous_order(conversation_key(opening(n)), bases)[0] == replica
    ]
    return found[:count]


@pytest.mark.live
def test_every_turn_of_a_conversation_reaches_one_replica_whichever_proxy_serves_it(fleet: Fleet) -> None:
    for number in range(4):
        messages = opening(number)
        served = {turn(fleet, step % 2, messages)[0] for step in range(4)}  # proxies alternate
        assert served == {rendezvous_order(conversation_key(opening(number)), fleet.bases)[0]}


@pytest.mark.live
def test_a_killed_replica_moves_only_its_conversations_once_and_is_cooled_down_for_both_proxies(
    fleet: Fleet,
) -> None:
    victim, survivor = fleet.replicas
    on_victim = [opening(n) for n in conversations_preferring(fleet.bases, victim.base_url, 2, start=100)]
    on_survivor = [opening(n) for n in conversations_preferring(fleet.bases, survivor.base_url, 1, start=100)]
    for messages in [*on_victim, *on_survivor]:
        turn(fleet, 0, messages)
    victim.kill()
    # Proxy 0 meets the dead replica: the request is retried on the survivor, nothing reaches the client.
    assert turn(fleet, 0, on_victim[0])[0] == survivor.base_url
    # Proxy 1 reads the shared cooldowns from Redis at most every default_redis_batch_cache_expiry (1 s).
    time.sleep(1.5)
    served, headers = turn(fleet, 1, on_victim[1])
    assert served == survivor.base_url
    assert headers.get("x-litellm-attempted-retries", "0") == "0"  # it never tried the dead replica
    assert headers.get("x-litellm-attempted-fallbacks", "0") == "0"
    # Every later turn, on either proxy, is answered; the moved conversations stay on the survivor.
    for step in range(2):
        for messages in [*on_victim, *on_survivor]:
            assert turn(fleet, step % 2, messages)[0] == survivor.base_url
