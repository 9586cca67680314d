"""Throughput (requests/s) at 1, 8, 32 and 128 concurrent async requests to the instant stub server,
for the three paths of bench/overhead.py: raw httpx.AsyncClient, litellm.acompletion through LiteLLM's
built-in `llamafile/` passthrough, and litellm.acompletion through this adapter.

C workers each send requests back to back until the level's quota is done; throughput is requests over
wall time, latency is per request. Paths alternate in interleaved blocks after a concurrent warm-up.
The stub runs in its own process, so on a 2-core machine it has roughly one core and the client one.

    python bench/concurrency.py [--quick] [--json out.json] [--levels 1,8,32,128] [--per-worker 8]
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import benchlib  # first: sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported
import httpx
import litellm

import litellm_llamafile

ADAPTER_CALLS = benchlib.AdapterCalls()

PATHS = ("raw", "builtin", "adapter")
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Say hello to the benchmark in a few words."},
]


class AsyncPaths:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/v1/chat/completions"
        self.body: dict[str, Any] = {
            "model": benchlib.MODEL,
            "messages": MESSAGES,
            "max_tokens": 16,
            "temperature": 0.0,
        }
        self.client = httpx.AsyncClient(
            trust_env=False,
            timeout=600.0,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        )

    async def raw(self) -> None:
        response = await self.client.post(self.url, json=self.body)
        response.raise_for_status()
        if not response.json()["choices"][0]["message"]["content"]:
            raise RuntimeError("empty reply")

    async def via_litellm(self) -> None:
        response = await litellm.acompletion(
            model=f"llamafile/{benchlib.MODEL}",
            messages=MESSAGES,
            max_tokens=16,
            temperature=0.0,
            api_base=f"{self.base_url}/v1",
        )
        if not response.choices[0].message.content:
            raise RuntimeError("empty reply")

    def call(self, path: str) -> Callable[[], Awaitable[None]]:
        return self.raw if path == "raw" else self.via_litellm


def route(path: str) -> None:
    if path == "adapter":
        litellm_llamafile.register()
    elif path == "builtin":
        litellm_llamafile.unregister()


async def block(
    call: Callable[[], Awaitable[None]], concurrency: int, total: int
) -> tuple[float, list[float], int]:
    """`total` requests by `concurrency` workers: (wall seconds, per-request latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    remaining = total

    async def worker() -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            try:
                await call()
            except Exception as error:
                errors += 1
                if errors == 1:
                    benchlib.say(f"request failed: {type(error).__name__}: {str(error)[:200]}")
                continue
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies, errors


async def measure(
    base_url: str, levels: list[int], per_worker: int, minimum: int, rounds: int
) -> list[dict[str, Any]]:
    paths = AsyncPaths(base_url)
    rows: list[dict[str, Any]] = []
    try:
        for level in levels:
            total = max(level * per_worker, minimum)
            per_block = max(level, total // rounds)
            stats: dict[str, dict[str, Any]] = {
                p: {"wall": 0.0, "cpu": 0.0, "lat": [], "errors": 0, "n": 0} for p in PATHS
            }
            for path in PATHS:  # warm-up: open `level` connections on every path
                route(path)
                await block(paths.call(path), level, level)
            for number in range(rounds):
                for path in PATHS[number % 3 :] + PATHS[: number % 3]:
                    route(path)
                    before = ADAPTER_CALLS.count
                    cpu = time.process_time()
                    wall, latencies, errors = await block(paths.call(path), level, per_block)
                    stats[path]["cpu"] += time.process_time() - cpu
                    handled = ADAPTER_CALLS.count - before
                    if handled != (per_block if path == "adapter" else 0):
                        raise RuntimeError(f"{path}: the adapter handled {handled} of {per_block} calls")
                    entry = stats[path]
                    entry["wall"] += wall
                    entry["lat"] += latencies
                    entry["errors"] += errors
                    entry["n"] += per_block
            for path in PATHS:
                entry = stats[path]
                latency = benchlib.latency_stats(entry["lat"])
                rows.append(
                    {
                        "concurrency": level,
                        "path": path,
                        "requests": entry["n"],
                        "errors": entry["errors"],
                        "req_per_s": (entry["n"] - entry["errors"]) / entry["wall"],
                        "p50_ms": latency["p50_ms"],
                        "p95_ms": latency["p95_ms"],
                        "cpu_ms_per_req": 1000.0 * entry["cpu"] / entry["n"],
                    }
                )
            line = ", ".join(f"{r['path']} {r['req_per_s']:.0f}/s" for r in rows[-3:])
            benchlib.say(f"concurrency {level}: {line}")
    finally:
        await paths.client.aclose()
        litellm_llamafile.register()
    return rows


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {(r["concurrency"], r["path"]): r for r in rows}
    for r in rows:
        raw = by[(r["concurrency"], "raw")]["req_per_s"]
        builtin = by[(r["concurrency"], "builtin")]["req_per_s"]
        r["vs_raw"] = benchlib.ratio(r["req_per_s"], raw)
        r["vs_builtin"] = benchlib.ratio(r["req_per_s"], builtin)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,8,32,128", help="comma-separated concurrency levels")
    parser.add_argument("--per-worker", type=int, help="requests per worker per level (full 8, quick 2)")
    parser.add_argument("--min-requests", type=int, help="at least this many requests per path and level")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved blocks per path and level")
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop (default: asyncio)")
    args = parser.parse_args(argv)
    benchlib.quiet_litellm()
    litellm_llamafile.register()
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    per_worker = benchlib.scaled(args, 8, 2, args.per_worker)
    minimum = benchlib.scaled(args, 300, 45, args.min_requests)
    rounds = max(1, args.rounds)

    with benchlib.StubServer() as stub:
        benchlib.say(f"stub {stub.base_url}: levels {levels}, >= {minimum} requests per path and level")
        coroutine = measure(stub.base_url, levels, per_worker, minimum, rounds)
        if args.uvloop:
            import uvloop

            rows = uvloop.run(coroutine)
        else:
            rows = asyncio.run(coroutine)
    rows = with_ratios(rows)
    targets = [
        benchlib.target(
            f"throughput at {r['concurrency']} concurrent: adapter/raw httpx", r["vs_raw"], ">=", 0.9, "x"
        )
        for r in rows
        if r["path"] == "adapter" and r["concurrency"] == 32
    ]
    print("\n== concurrency: async throughput on the stub ==")
    print(
        benchlib.table(
            ["concurrent", "path", "requests", "errors", "req/s", "vs raw", "vs builtin", "p50 ms", "p95 ms",
             "CPU ms/req"],
            [
                [r["concurrency"], r["path"], r["requests"], r["errors"], r["req_per_s"], r["vs_raw"],
                 r["vs_builtin"], r["p50_ms"], r["p95_ms"], r["cpu_ms_per_req"]]
                for r in rows
            ],
        )
    )  # fmt: skip
    if targets:
        print("\n== concurrency: targets ==")
        print(benchlib.targets_table(targets))
    benchlib.write_json(
        args.json,
        {
            "benchmark": "concurrency",
            "machine": benchlib.machine(),
            "params": {
                "levels": levels,
                "per_worker": per_worker,
                "min_requests": minimum,
                "rounds": rounds,
                "client_loop": "uvloop" if args.uvloop else "asyncio",
            },
            "rows": rows,
            "targets": targets,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
