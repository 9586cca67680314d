"""Where the time goes on the adapter path (and, for comparison, on LiteLLM's built-in passthrough).

Runs one scenario against the instant stub server under pyinstrument (a sampling, wall-clock profiler
of the calling thread) and attributes every sample to a component by the innermost frame of ours or a
library's (C built-ins go to their caller, socket/select waits to "waiting on the server"):

    adapter   litellm_llamafile/*        litellm   LiteLLM's own code      openai   the OpenAI SDK
    http      httpx/httpcore/h11/anyio   tenacity  retry wrapper           pydantic models/validation
    asyncio   event loop                 wait      socket/select waits     other    stdlib and the rest

Printed per request: time by component overall, time inside the adapter's handler by component, the
adapter's functions by inclusive time, and the hottest functions by self time.

    python bench/profile_adapter.py [sync-json|sync-stream|async-32|count-warm|what-if|all] [-n 300]
                                    [--path adapter|builtin|both] [--html DIR] [--json PATH]

Scenarios: sync-json / sync-stream are sequential litellm.completion calls; async-32 is 32 concurrent
litellm.acompletion workers; count-warm repeats litellm_llamafile.count_tokens on the 50-message coding
conversation (warm: answered from the cache).

what-if (not profiled) measures the proposed fixes as bench-local, reversible monkeypatches, interleaved
with the unpatched adapter and the built-in path, by wall time and by process CPU time per request (CPU
time, which includes LiteLLM's background logging thread, is the steadier figure on a busy machine):

(Earlier what-ifs, a $0 cost-map entry per model and the async pool on aiohttp, are now how the adapter
works; the interleaved adapter/built-in comparison stays.)

* input-key  - count_tokens answered from a cache keyed on the call's raw input (marshal + blake2b)
               before any request transform.

Needs pyinstrument (`.venv/bin/pip install pyinstrument`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import marshal
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib  # first: sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported
import conversations
import litellm

import litellm_llamafile
from litellm_llamafile.core.settings import LlamafileSettings
from litellm_llamafile.server import probe
from litellm_llamafile.server.servers import SERVERS

SCENARIOS = ("sync-json", "sync-stream", "async-32", "count-warm", "what-if")
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Say hello to the benchmark in a few words."},
]
COMPONENTS = (
    ("adapter", ("/litellm_llamafile/",)),
    ("litellm", ("/litellm/", "/litellm_enterprise/", "/litellm_proxy_extras/")),
    ("openai", ("/openai/",)),
    (
        "http",
        ("/httpx/", "/httpcore/", "/h11/", "/anyio/", "/sniffio/", "/aiohttp/", "/yarl/", "/multidict/"),
    ),
    ("tenacity", ("/tenacity/",)),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("asyncio", ("/asyncio/", "/uvloop/", "selectors.py")),
)
WAITS = ("socket.recv", "socket.send", "socket.sendall", "select.select", "epoll.poll", "select.poll")


def component(path: str) -> str:
    for name, needles in COMPONENTS:
        if any(n in path for n in needles):
            return name
    return "other"


def parse(identifier: str) -> tuple[str, str]:
    parts = identifier.split("\x00")
    return parts[0], parts[1] if len(parts) > 1 else ""


class Attribution:
    """Aggregates pyinstrument's raw samples (stack, seconds)."""

    def __init__(self, records: list[tuple[list[str], float]], requests: int) -> None:
        self.requests = requests
        self.total = 0.0
        self.by_component: Counter[str] = Counter()
        self.in_handler: Counter[str] = Counter()
        self.handler_total = 0.0
        self.adapter_inclusive: Counter[str] = Counter()
        self.self_time: Counter[tuple[str, str]] = Counter()
        self.top_litellm: Counter[str] = Counter()
        for stack, seconds in records:
            frames = [parse(f.split("\x01")[0]) for f in stack]
            frames = [f for f in frames if f[0] and "profile_adapter.py" not in f[1]]
            if not frames:
                continue
            self.total += seconds
            leaf = self.leaf_component(frames)
            self.by_component[leaf] += seconds
            name, path = self.leaf_frame(frames)
            self.self_time[(f"{name}  {short(path)}", leaf)] += seconds
            ours = [f for f in frames if "/litellm_llamafile/" in f[1]]
            if ours:
                self.handler_total += seconds
                self.in_handler[leaf] += seconds
                for fn in dict.fromkeys(f"{n}  {short(p)}" for n, p in ours):
                    self.adapter_inclusive[fn] += seconds
            # LiteLLM's functions by inclusive time (each once per sample), outside our handler.
            for fn in dict.fromkeys(f"{n}  {short(p)}" for n, p in frames if component(p) == "litellm"):
                self.top_litellm[fn] += seconds

    @staticmethod
    def leaf_frame(frames: list[tuple[str, str]]) -> tuple[str, str]:
        name, path = frames[-1]
        if name in WAITS:
            return name, path
        for name, path in reversed(frames):
            if path and not path.startswith("<"):
                return name, path
        return frames[-1]

    @staticmethod
    def leaf_component(frames: list[tuple[str, str]]) -> str:
        name, path = frames[-1]
        if name in WAITS:
            return "wait"
        for _, path in reversed(frames):
            if path and not path.startswith("<"):
                return component(path)
        return "other"

    def per_request_ms(self, seconds: float) -> float:
        return seconds * 1000.0 / self.requests

    def report(self, title: str, top: int = 12) -> dict[str, Any]:
        ms = self.per_request_ms
        print(f"\n== profile: {title}: {ms(self.total):.3f} ms per request (profiled wall time) ==")
        rows = [[c, ms(s), 100 * s / self.total] for c, s in self.by_component.most_common()]
        print(benchlib.table(["component (innermost frame)", "ms/request", "share %"], rows))
        handler_rows = [[c, ms(s), 100 * s / self.total] for c, s in self.in_handler.most_common()]
        if self.handler_total:
            print(f"\ninside the adapter's handler: {ms(self.handler_total):.3f} ms per request "
                  f"({100 * self.handler_total / self.total:.1f}% of the call)")  # fmt: skip
            print(benchlib.table(["component", "ms/request", "share % of call"], handler_rows))
            adapter_rows = [
                [f, ms(s), 100 * s / self.total] for f, s in self.adapter_inclusive.most_common(top)
            ]
            print("\nadapter functions, inclusive:")
            print(benchlib.table(["function", "ms/request", "share %"], adapter_rows))
        litellm_rows = [
            [f, ms(s), 100 * s / self.total]
            for f, s in self.top_litellm.most_common(top * 3)
            if s < 0.9 * self.total  # skip the entry chain every sample passes through
        ][:top]
        print("\nLiteLLM functions, inclusive (below the entry point):")
        print(benchlib.table(["function", "ms/request", "share %"], litellm_rows))
        self_rows = [[f, c, ms(s), 100 * s / self.total] for (f, c), s in self.self_time.most_common(top)]
        print("\nhottest functions by self time:")
        print(benchlib.table(["function", "component", "ms/request", "share %"], self_rows))
        return {
            "title": title,
            "ms_per_request": ms(self.total),
            "by_component_ms": {c: ms(s) for c, s in self.by_component.items()},
            "adapter_handler_ms": ms(self.handler_total),
            "in_handler_ms": {c: ms(s) for c, s in self.in_handler.items()},
            "adapter_functions_ms": {f: ms(s) for f, s in self.adapter_inclusive.most_common(top)},
            "litellm_functions_ms": {r[0]: r[1] for r in litellm_rows},
            "self_time_ms": {f"{f} [{c}]": ms(s) for (f, c), s in self.self_time.most_common(top)},
        }


def short(path: str) -> str:
    for marker in ("site-packages/", str(Path(__file__).resolve().parent.parent) + "/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# -- scenarios -----------------------------------------------------------------------------------------


def litellm_kwargs(base_url: str) -> dict[str, Any]:
    return {
        "model": f"llamafile/{benchlib.MODEL}",
        "messages": MESSAGES,
        "max_tokens": 16,
        "temperature": 0.0,
        "api_base": f"{base_url}/v1",
    }


def sync_json(base_url: str) -> Callable[[], None]:
    kwargs = litellm_kwargs(base_url)
    return lambda: litellm.completion(**kwargs) and None


def sync_stream(base_url: str) -> Callable[[], None]:
    kwargs = litellm_kwargs(base_url)

    def one() -> None:
        for _ in litellm.completion(**kwargs, stream=True, stream_options={"include_usage": True}):
            pass

    return one


def profile_sync(one: Callable[[], None], n: int, warmup: int, interval: float) -> tuple[Any, float]:
    from pyinstrument import Profiler

    for _ in range(warmup):
        one()
    profiler = Profiler(interval=interval, async_mode="disabled")
    start = time.perf_counter()
    profiler.start()
    for _ in range(n):
        one()
    session = profiler.stop()
    return session, time.perf_counter() - start


async def acompletions(kwargs: dict[str, Any], concurrency: int, total: int) -> None:
    """`total` litellm.acompletion calls, sent back to back by `concurrency` workers."""
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await litellm.acompletion(**kwargs)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def profile_async(base_url: str, n: int, concurrency: int, interval: float) -> tuple[Any, float]:
    from pyinstrument import Profiler

    kwargs = litellm_kwargs(base_url)

    async def run(total: int) -> None:
        await acompletions(kwargs, concurrency, total)

    async def main() -> tuple[Any, float]:
        await run(concurrency * 2)
        profiler = Profiler(interval=interval, async_mode="disabled")
        start = time.perf_counter()
        profiler.start()
        await run(n)
        session = profiler.stop()
        return session, time.perf_counter() - start

    return asyncio.run(main())


_FAST: dict[bytes, int] = {}


def count_with_input_key(messages: list[Any], *, tools: list[Any], api_base: str) -> int:
    """What-if prototype (bench only): look the count up by the call's raw input before transforming it.

    marshal is C-speed and exact for plain JSON-like data; anything it cannot encode (pydantic messages)
    falls through to the package's own path. The key holds what decides the rendered request."""
    settings = LlamafileSettings.resolve(api_base=api_base)
    template = probe.chosen_template(settings, SERVERS.get(settings.api_base).info)
    try:
        raw = marshal.dumps((settings.api_base, template.value, messages, tools))
    except ValueError:
        return litellm_llamafile.count_tokens(messages, tools=tools, api_base=api_base)
    key = hashlib.blake2b(raw, digest_size=20).digest()
    hit = _FAST.get(key)
    if hit is not None:
        return hit
    _FAST[key] = count = litellm_llamafile.count_tokens(messages, tools=tools, api_base=api_base)
    return count


def time_per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) * 1000.0 / n


# -- what-if: the proposed fixes as reversible, bench-local patches ------------------------------------


VARIANTS: dict[str, tuple[str, tuple[Callable[[], contextlib.AbstractContextManager[None]], ...]]] = {
    "builtin": ("builtin", ()),
    "adapter": ("adapter", ()),
}


def sync_block(one: Callable[[], None], n: int) -> tuple[list[float], float]:
    """Per-request wall times and process CPU seconds for n sequential requests."""
    walls = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        one()
        walls.append(time.perf_counter() - start)
    return walls, time.process_time() - cpu


def async_block(base_url: str, concurrency: int, total: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for `total` acompletion calls by `concurrency` workers, after
    a warm-up, on a fresh event loop (so a fresh adapter pool)."""
    kwargs = litellm_kwargs(base_url)

    async def run(count: int) -> None:
        await acompletions(kwargs, concurrency, count)

    async def main() -> tuple[float, float]:
        await run(concurrency)
        cpu, start = time.process_time(), time.perf_counter()
        await run(total)
        return time.perf_counter() - start, time.process_time() - cpu

    return asyncio.run(main())


def what_if(base_url: str, n: int, rounds: int) -> list[dict[str, Any]]:
    plans = {
        "sync-json": ["builtin", "adapter"],
        "sync-stream": ["builtin", "adapter"],
        "async-32": ["builtin", "adapter"],
    }
    rows: list[dict[str, Any]] = []
    for scenario, variants in plans.items():
        walls: dict[str, list[float]] = {v: [] for v in variants}
        cpus: dict[str, float] = dict.fromkeys(variants, 0.0)
        elapsed: dict[str, float] = dict.fromkeys(variants, 0.0)
        counts: dict[str, int] = dict.fromkeys(variants, 0)
        per_block = max(1, n // rounds)
        for number in range(rounds):
            for variant in variants[number % len(variants) :] + variants[: number % len(variants)]:
                path, patches = VARIANTS[variant]
                (litellm_llamafile.register if path == "adapter" else litellm_llamafile.unregister)()
                with contextlib.ExitStack() as stack:
                    for patch in patches:
                        stack.enter_context(patch())
                    if scenario == "async-32":
                        total = max(64, per_block)
                        wall, cpu = async_block(base_url, 32, total)
                        elapsed[variant] += wall
                        counts[variant] += total
                    else:
                        one = sync_json(base_url) if scenario == "sync-json" else sync_stream(base_url)
                        for _ in range(5):  # warm-up after a routing/patch change
                            one()
                        block_walls, cpu = sync_block(one, per_block)
                        walls[variant] += block_walls
                        counts[variant] += per_block
                    cpus[variant] += cpu
        litellm_llamafile.register()
        base: dict[str, float] = {}
        for variant in variants:
            cpu_ms = cpus[variant] * 1000 / counts[variant]
            if scenario == "async-32":
                value, unit = counts[variant] / elapsed[variant], "req/s"
            else:
                value, unit = statistics.median(walls[variant]) * 1000, "p50 ms"
            if variant == "adapter":
                base = {"value": value, "cpu": cpu_ms}
            rows.append({"scenario": scenario, "variant": variant, "metric": unit, "value": value,
                         "cpu_ms_per_request": cpu_ms, "requests": counts[variant]})  # fmt: skip
        for row in rows:
            if row["scenario"] == scenario and base:
                row["value_vs_adapter"] = benchlib.ratio(row["value"], base["value"])
                row["cpu_vs_adapter"] = benchlib.ratio(row["cpu_ms_per_request"], base["cpu"])
    print("\n== what-if: proposed fixes as bench-local patches (interleaved, on the stub) ==")
    print(
        benchlib.table(
            ["scenario", "variant", "requests", "metric", "value", "vs adapter", "CPU ms/req",
             "CPU vs adapter"],
            [
                [r["scenario"], r["variant"], r["requests"], r["metric"], r["value"], r["value_vs_adapter"],
                 r["cpu_ms_per_request"], r["cpu_vs_adapter"]]
                for r in rows
            ],
        )
    )  # fmt: skip
    return rows


# -- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("scenario", nargs="?", default="all", choices=[*SCENARIOS, "all"])
    parser.add_argument("-n", type=int, help="profiled requests (default 300; count-warm: 3000)")
    parser.add_argument("--path", default="both", choices=["adapter", "builtin", "both"])
    parser.add_argument("--interval", type=float, default=0.0001, help="pyinstrument sampling interval, s")
    parser.add_argument("--html", metavar="DIR", help="also save pyinstrument's HTML call trees in DIR")
    args = parser.parse_args(argv)
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        print("needs pyinstrument: .venv/bin/pip install pyinstrument", file=sys.stderr)
        return 2
    benchlib.quiet_litellm()
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    paths = ["adapter", "builtin"] if args.path == "both" else [args.path]
    n = benchlib.scaled(args, 300, 60, args.n)
    results: list[dict[str, Any]] = []

    def save(session: Any, name: str) -> None:
        if args.html:
            from pyinstrument.renderers import HTMLRenderer

            out = Path(args.html)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{name}.html").write_text(HTMLRenderer().render(session))

    with benchlib.StubServer() as stub:
        for scenario in scenarios:
            if scenario == "what-if":
                rows = what_if(stub.base_url, n, rounds=6)
                results.append({"scenario": scenario, "rows": rows})
                continue
            if scenario == "count-warm":
                run = conversations.coding_run()
                litellm_llamafile.register()
                count_n = n * 10

                def warm(run: conversations.Run = run, url: str = stub.base_url) -> int:
                    return litellm_llamafile.count_tokens(run.messages, tools=run.tools, api_base=url)

                warm()
                session, wall = profile_sync(warm, count_n, 10, args.interval)
                attribution = Attribution(session.frame_records, count_n)
                result = attribution.report(f"count-warm (50 messages, {len(run.tools)} tools) on the stub")
                now = time_per_call(warm, count_n)

                def fast(run: conversations.Run = run, url: str = stub.base_url) -> int:
                    return count_with_input_key(run.messages, tools=run.tools, api_base=url)

                assert fast() == warm()
                fast_ms = time_per_call(fast, count_n)
                print(
                    f"\nwhat-if, warm 50-message count unprofiled: now {now * 1000:.1f} us per call; "
                    f"with an input-keyed cache in front {fast_ms * 1000:.1f} us per call"
                )
                result.update({"scenario": scenario, "path": "adapter", "unprofiled_ms": now,
                               "what_if_input_key_ms": fast_ms})  # fmt: skip
                results.append(result)
                save(session, scenario)
                continue
            for path in paths:
                if path == "adapter":
                    litellm_llamafile.register()
                else:
                    litellm_llamafile.unregister()
                if scenario == "async-32":
                    session, wall = profile_async(stub.base_url, n, 32, args.interval)
                else:
                    one = sync_json(stub.base_url) if scenario == "sync-json" else sync_stream(stub.base_url)
                    session, wall = profile_sync(one, n, 20, args.interval)
                attribution = Attribution(session.frame_records, n)
                result = attribution.report(f"{scenario}, {path} path, {n} requests on the stub")
                result.update({"scenario": scenario, "path": path, "wall_ms_per_request": wall * 1000 / n})
                results.append(result)
                save(session, f"{scenario}-{path}")
        litellm_llamafile.register()

    benchlib.write_json(
        args.json,
        {"benchmark": "profile", "machine": benchlib.machine(), "params": {"n": n}, "results": results},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
