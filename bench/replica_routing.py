"""Replica routing benchmark: does each agent's turn reach the replica that caches its conversation?

K agents run at once, T turns each with tools (a forced `web_search` call, then its result appended), through
the real LiteLLM proxy (config from `litellm_llamafile.cli.proxy_config`) in front of N real llama-servers of
SmolLM2 (`-np` slots >= K/N, `--metrics`). The same agents run once per strategy: LiteLLM's `simple-shuffle`
and `least-busy`, and this package's `conversation` (rendezvous hashing of the conversation's opening with
bounded load). Per strategy: prompt tokens and prefilled tokens (the servers' own /metrics counters),
cached/prompt ratio from turn 2 (usage.prompt_tokens_details.cached_tokens), prefill seconds (/metrics),
p50/p95 turn latency, requests per replica (max/min, from the proxy's x-litellm-model-api-base header);
and in a variant where one replica is SIGKILLed after turn --kill-after, the requests lost and the
conversations that changed replica (and how many of those were not on the dead one).

    python bench/replica_routing.py                              # 4 and 8 agents x 10 turns, 2 and 3 replicas
    python bench/replica_routing.py --agents 4 --turns 4 --replicas 2 --kill-after 2   # reduced run
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litellm_llamafile.cli.proxy_config import render_config, running_proxy
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from tests.support.data import FINISH, SEARCH

STRATEGIES = ("simple-shuffle", "least-busy", "conversation")
RESULT = (
    "Result {n}: Roman dodecahedrons are small hollow bronze objects with twelve flat pentagonal faces, each "
    "with a round hole, found from Wales to Hungary and dated to the 2nd-4th centuries; their use is unknown."
)


def say(message: str) -> None:
    print(f"[replica_routing] {message}", file=sys.stderr, flush=True)


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    prompt_tokens_later: int = 0
    cached_tokens_later: int = 0
    served: list[list[str]] = field(default_factory=list)  # per agent, the replica of each turn
    lost: int = 0


def metrics(base: str) -> dict[str, float]:
    values: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
            name, _, value = line.partition(" ")
            if name in ("llamacpp:prompt_tokens_total", "llamacpp:prompt_seconds_total"):
                values[name] = float(value)
    return values


def agent(
    client: OpenAI, tag: str, number: int, turns: int, outcome: Outcome, barrier: Any, kill_after: int | None
) -> None:
    messages: list[Any] = [
        {"role": "system", "content": f"[{tag}] You are research agent {number}. Use the tools."},
        {"role": "user", "content": f"Agent {number}: find out what Roman dodecahedrons were for."},
    ]
    served: list[str] = []
    outcome.served.append(served)
    for step in range(1, turns + 1):
        if kill_after is not None and step == kill_after + 1:
            barrier.wait()  # every agent has finished turn kill_after; the replica dies now
            barrier.wait()
        started = time.monotonic()
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="pool",
                messages=messages,
                tools=[SEARCH, FINISH],
                tool_choice={"type": "function", "function": {"name": "web_search"}},
                max_tokens=48,
                temperature=0,
                seed=number,
            )
        except Exception as error:  # a lost request: the client saw an error
            say(f"agent {number} turn {step}: {type(error).__name__}: {str(error)[:120]}")
            outcome.lost += 1
            served.append("lost")
            continue
        outcome.latencies.append(time.monotonic() - started)
        response = raw.parse()
        served.append((raw.headers.get("x-litellm-model-api-base") or "?").rstrip("/").removesuffix("/v1"))
        usage = response.usage
        details = getattr(usage, "prompt_tokens_details", None)
        if step > 1 and usage is not None:
            outcome.prompt_tokens_later += usage.prompt_tokens
            outcome.cached_tokens_later += int(getattr(details, "cached_tokens", 0) or 0)
        message = response.choices[0].message
        calls = message.tool_calls or []
        messages.append(message.model_dump(exclude_none=True))
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": RESULT.format(n=step)})
        if not calls:
            messages.append({"role": "user", "content": "Search again."})


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(
    strategy: str, agents: int, turns: int, replicas: int, work: Path, *, kill_after: int | None
) -> dict[str, Any]:
    slots = max(1, math.ceil(agents / replicas))
    with contextlib.ExitStack() as stack:
        servers = []
        for _ in range(replicas):
            server = EmbeddedServer(slots=slots, ctx_size=4096 * slots, extra_args=("--metrics",))
            stack.callback(server.stop)
            servers.append(server.start())
        config = work / f"{strategy}.yaml"
        config.write_text(render_config([("pool", s.base_url) for s in servers], routing=strategy))
        url, key = stack.enter_context(running_proxy(config, log=work / f"proxy-{strategy}.log"))
        client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=600)
        before = {s.base_url: metrics(s.base_url) for s in servers}
        outcome = Outcome()
        barrier: Any = None
        if kill_after is not None:
            import threading

            barrier = threading.Barrier(agents + 1)
        tag = f"{strategy}-{time.time_ns()}"
        with concurrent.futures.ThreadPoolExecutor(max_workers=agents) as pool:
            futures = [
                pool.submit(agent, client, tag, n, turns, outcome, barrier, kill_after) for n in range(agents)
            ]
            if kill_after is not None:
                barrier.wait()
                victim = servers[0]
                after_kill = metrics(victim.base_url)
                victim.kill()
                barrier.wait()
            for future in futures:
                future.result()
        after = {s.base_url: metrics(s.base_url) for s in servers}
        if kill_after is not None:
            after[servers[0].base_url] = after_kill

    def delta(name: str) -> float:
        return sum(after[b].get(name, 0.0) - before[b].get(name, 0.0) for b in before)

    per_replica = Counter(r for turns_served in outcome.served for r in turns_served if r != "lost")
    counts = [per_replica.get(s.base_url, 0) for s in servers]
    row: dict[str, Any] = {
        "strategy": strategy,
        "prefilled_tokens": int(delta("llamacpp:prompt_tokens_total")),
        "prefill_seconds": round(delta("llamacpp:prompt_seconds_total"), 2),
        "cached_ratio_from_turn_2": round(
            outcome.cached_tokens_later / max(1, outcome.prompt_tokens_later), 3
        ),
        "p50_s": round(percentile(outcome.latencies, 0.5), 2),
        "p95_s": round(percentile(outcome.latencies, 0.95), 2),
        "requests_max_min": f"{max(counts)}/{min(counts)}",
    }
    if kill_after is not None:
        dead = servers[0].base_url
        moved = [
            s for s in outcome.served if len({r for r in s[kill_after:] if r != "lost"} - {s[kill_after - 1]})
        ]
        row["lost"] = outcome.lost
        row["moved"] = len(moved)
        row["moved_not_from_dead"] = sum(1 for s in moved if s[kill_after - 1] != dead)
        row["requests_max_min"] = f"{max(counts[1:])}/{min(counts[1:])} (survivors)"
    return row


def table(rows: list[dict[str, Any]]) -> str:
    headers = list(rows[0])
    widths = [max(len(h), *(len(str(r.get(h, ""))) for r in rows)) for h in headers]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += [
        "  ".join(str(r.get(h, "")).ljust(w) for h, w in zip(headers, widths, strict=True)) for r in rows
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, action="append", help="K (repeatable; default 4 and 8)")
    parser.add_argument("--replicas", type=int, action="append", help="N (repeatable; default 2 and 3)")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--kill-after", type=int, default=5, help="turn after which a replica is killed")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--no-kill", action="store_true", help="skip the kill-a-replica variant")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    if not args.no_kill and not 0 < args.kill_after < args.turns:
        parser.error("--kill-after must be between 1 and --turns - 1 (or give --no-kill)")
    results: list[dict[str, Any]] = []
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="replica-routing-") as tmp:
        for replicas in args.replicas or [2, 3]:
            for agents in args.agents or [4, 8]:
                variants: list[int | None] = [None] if args.no_kill else [None, args.kill_after]
                for kill_after in variants:
                    rows = []
                    for strategy in strategies:
                        say(
                            f"{agents} agents x {args.turns} turns, {replicas} replicas, {strategy}, "
                            f"kill={kill_after}"
                        )
                        rows.append(
                            run(strategy, agents, args.turns, replicas, Path(tmp), kill_after=kill_after)
                        )
                        say(json.dumps(rows[-1]))  # each row as soon as it is measured
                    title = f"{agents} agents x {args.turns} turns, {replicas} replicas"
                    title += f", one replica killed after turn {kill_after}" if kill_after else ""
                    print(f"\n## {title}\n{table(rows)}", flush=True)
                    results.append(
                        {"agents": agents, "replicas": replicas, "kill_after": kill_after, "rows": rows}
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
