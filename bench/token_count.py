"""Token-count accuracy and cost on realistic agent conversations (2..50 messages, with tools) against
real llama.cpp servers (SmolLM2-135M; a ChatML server and, unless --quick, a Mistral-template one).

For every conversation prefix (a point where an agent would send a request):

* truth    - the server's `usage.prompt_tokens` for that request sent through the adapter
             (`litellm.completion(model="llamafile/...", tools=..., max_tokens=1)`, registered);
* adapter  - `litellm_llamafile.count_tokens(messages, tools=..., api_base=...)`;
* builtin  - `litellm.token_counter(model="llamafile/...", messages=..., tools=...)` with `llamafile/`
             given back to LiteLLM (unregistered): LiteLLM's tiktoken estimate;
* cost of an adapter count: cold (after `litellm_llamafile.SERVERS.forget()`: separator learning,
  /apply-template, /tokenize, verification), grow (cache cleared, then the previous request point
  counted, then this one: the agent-loop case, only the new tail is tokenized) and warm (the same
  request again, answered from the cache; median of --warm-n repeats). HTTP calls are counted too.

    python bench/token_count.py [--quick] [--json out.json] [--warm-n 200] [--real-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import benchlib  # first: sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported
import conversations
import httpx
import litellm

import litellm_llamafile
from litellm_llamafile.server.servers import SERVERS
from litellm_llamafile.wire.protocol import HttpCall
from litellm_llamafile.wire.transport import SyncDriver

FULL_SIZES = [2, 4, 6, 9, 12, 16, 20, 25, 30, 36, 42, 50]
QUICK_SIZES = [2, 9, 25, 50]


class HttpCounter:
    """Counts the adapter's HTTP requests (wraps SyncDriver.send in this process only)."""

    def __init__(self) -> None:
        self.calls = 0
        original = SyncDriver.send
        counter = self

        def counted(self: SyncDriver, call: HttpCall) -> Any:
            counter.calls += 1
            return original(self, call)

        SyncDriver.send = counted  # type: ignore[method-assign]

    def timed(self, fn: Callable[[], int]) -> tuple[int, float, int]:
        before = self.calls
        start = time.perf_counter()
        value = fn()
        return value, (time.perf_counter() - start) * 1000.0, self.calls - before


def server_prompt_tokens(url: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int | str:
    """The server's prompt_tokens for the adapter's request, or the error it answered (a shared server
    whose KV cache is full of other clients' prompts can refuse a long one: retried once, then recorded)."""
    litellm_llamafile.register()
    for attempt in range(2):
        try:
            response = litellm.completion(
                model=f"llamafile/{benchlib.MODEL}",
                messages=messages,
                tools=tools,
                api_base=url,
                max_tokens=1,
                temperature=0.0,
                timeout=900,
            )
            return int(response.usage.prompt_tokens)
        except Exception as error:
            message = f"{type(error).__name__}: {str(error)[-120:]}"
        benchlib.say(f"server refused the request (attempt {attempt + 1}): {message}")
        time.sleep(5)
    return f"error: {message}"


def builtin_estimate(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    litellm_llamafile.unregister()
    try:
        return int(litellm.token_counter(model=f"llamafile/{benchlib.MODEL}", messages=messages, tools=tools))
    finally:
        litellm_llamafile.register()


def builtin_request_tokens(
    url: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> int | str:
    """The server's prompt_tokens for the built-in passthrough's own request (it sends `tools` and the
    messages as they are, no tool prompt), or what went wrong: LiteLLM's exception, or - LiteLLM 1.108
    returns None when the server answers 400 - the server's own answer to the same body."""
    litellm_llamafile.unregister()
    try:
        response = litellm.completion(
            model=f"llamafile/{benchlib.MODEL}",
            messages=messages,
            tools=tools,
            api_base=f"{url}/v1",
            max_tokens=1,
            temperature=0.0,
            timeout=900,
        )
    except Exception as error:
        return f"raised {type(error).__name__}"
    finally:
        litellm_llamafile.register()
    if response is not None and getattr(response, "usage", None) is not None:
        return int(response.usage.prompt_tokens)
    body = {
        "model": benchlib.MODEL,
        "messages": messages,
        "tools": tools,
        "max_tokens": 1,
        "temperature": 0.0,
    }
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=900, trust_env=False)
    return f"None (HTTP {answer.status_code})"


def measure_run(
    server: str,
    url: str,
    run: conversations.Run,
    sizes: list[int],
    warm_n: int,
    http: HttpCounter,
    builtin_request: bool,
) -> list[dict[str, Any]]:
    rows = []
    previous: int | None = None
    for size in run.sizes(sizes):
        messages = run.messages[:size]

        def count(msgs: list[dict[str, Any]] = messages) -> int:
            return litellm_llamafile.count_tokens(msgs, tools=run.tools, api_base=url)

        # grow: the agent loop (previous request point already counted), then cold.
        grow_ms, grow_calls = float("nan"), 0
        if previous is not None:
            SERVERS.forget()
            litellm_llamafile.count_tokens(run.messages[:previous], tools=run.tools, api_base=url)
            _, grow_ms, grow_calls = http.timed(count)
        SERVERS.forget()
        counted, cold_ms, cold_calls = http.timed(count)
        warm: list[float] = []
        warm_calls = 0
        for _ in range(warm_n):
            again, ms, calls = http.timed(count)
            warm.append(ms)
            warm_calls += calls
            if again != counted:
                raise RuntimeError(f"warm count {again} != cold count {counted}")
        truth = server_prompt_tokens(url, messages, run.tools)
        compared = isinstance(truth, int)
        estimate = builtin_estimate(messages, run.tools)
        own = builtin_request_tokens(url, messages, run.tools) if builtin_request else "not run"
        rows.append(
            {
                "server": server,
                "conversation": run.name,
                "messages": size,
                "server_prompt_tokens": truth if compared else None,
                "server_error": None if compared else truth,
                "adapter_count": counted,
                "adapter_error": counted - truth if compared else None,
                "builtin_count": estimate,
                "builtin_error": estimate - truth if compared else None,
                "builtin_error_pct": 100.0 * (estimate - truth) / truth if compared else None,
                "builtin_request_prompt_tokens": own,
                "builtin_error_vs_own_request": estimate - own if isinstance(own, int) else None,
                "cold_ms": cold_ms,
                "cold_http_calls": cold_calls,
                "grow_ms": grow_ms,
                "grow_http_calls": grow_calls,
                "warm_p50_ms": statistics.median(warm),
                "warm_p95_ms": benchlib.percentile(warm, 95),
                "warm_http_calls": warm_calls,
            }
        )
        benchlib.say(
            f"{server} {run.name} {size:>2} msgs: server {truth}, adapter {counted}, builtin {estimate}, "
            f"cold {cold_ms:.1f} ms, warm {statistics.median(warm):.4f} ms"
        )
        previous = size
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.base_parser(__doc__.split("\n\n")[0])
    benchlib.real_url_args(parser, mistral=True)
    parser.add_argument("--warm-n", type=int, help="repeats of the warm (cached) count (full 200, quick 50)")
    parser.add_argument("--sizes", help="comma-separated conversation lengths (nearest request point below)")
    parser.add_argument(
        "--templates",
        help="comma-separated server templates to test: chatml,mistral (default both; --quick: chatml)",
    )
    parser.add_argument("--one-run", action="store_true", help="only the coding-agent conversation")
    parser.add_argument(
        "--private-servers",
        action="store_true",
        help="start private llama.cpp servers (EmbeddedServer, 2048 tokens per slot) instead of using "
        "--real-url / --real-mistral-url, which other clients may be filling",
    )
    parser.add_argument(
        "--builtin-request",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also send each conversation through the built-in passthrough and record the server's "
        "prompt_tokens for that request (default: on, off with --quick)",
    )
    args = parser.parse_args(argv)
    benchlib.quiet_litellm()
    warm_n = benchlib.scaled(args, 200, 50, args.warm_n)
    sizes = (
        [int(x) for x in args.sizes.split(",")] if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    )
    templates = (
        args.templates.split(",") if args.templates else (["chatml"] if args.quick else ["chatml", "mistral"])
    )
    urls_by_template = {"chatml": args.real_url, "mistral": args.real_mistral_url}
    servers = [(t.strip(), urls_by_template[t.strip()]) for t in templates]
    runs = list(conversations.runs())
    if args.one_run or args.quick:
        runs = runs[:1]

    builtin_request = args.builtin_request if args.builtin_request is not None else not args.quick
    http = HttpCounter()
    rows: list[dict[str, Any]] = []
    urls = {}
    for template, wanted in servers:
        with benchlib.real_server(None if args.private_servers else wanted, template) as url:
            urls[template] = url
            for run in runs:
                rows += measure_run(template, url, run, sizes, warm_n, http, builtin_request)

    errors = [abs(r["adapter_error"]) for r in rows if r["adapter_error"] is not None]
    worst_error = max(errors) if errors else float("nan")
    worst_warm = max(r["warm_p50_ms"] for r in rows)
    targets = [
        benchlib.target("adapter count error, worst conversation", worst_error, "==", 0, "tokens"),
        benchlib.target(
            "conversations compared with the server", len(errors), "==", len(rows), "of " + str(len(rows))
        ),
        benchlib.target("warm (cached) count p50, worst conversation", worst_warm, "<", 0.1, "ms"),
    ]
    print("\n== token counts: adapter and LiteLLM built-in vs the server's usage.prompt_tokens ==")
    print("(server = prompt_tokens of the adapter's request; builtin = litellm.token_counter, unregistered;")
    print(" own req = prompt_tokens the server reports for the built-in passthrough's own request;")
    print(
        " 'None (HTTP 400)': litellm.completion returned None, the server answered that status to that body)"
    )
    print(
        benchlib.table(
            ["server", "conversation", "msgs", "server", "adapter", "err", "builtin", "err", "err %",
             "own req", "builtin-own"],
            [
                [r["server"], r["conversation"], r["messages"], r["server_prompt_tokens"], r["adapter_count"],
                 r["adapter_error"], r["builtin_count"], r["builtin_error"], r["builtin_error_pct"],
                 r["builtin_request_prompt_tokens"], r["builtin_error_vs_own_request"]]
                for r in rows
            ],
        )
    )  # fmt: skip
    for r in rows:
        if r["server_error"]:
            print(
                f"not compared: {r['server']} {r['conversation']} {r['messages']} msgs: {r['server_error']}"
            )
    print("\n== token counts: cost of an adapter count (ms, and HTTP calls to the server) ==")
    print(
        benchlib.table(
            ["server", "conversation", "msgs", "cold ms", "calls", "grow ms", "calls", "warm p50 ms",
             "warm p95 ms"],
            [
                [r["server"], r["conversation"], r["messages"], r["cold_ms"], r["cold_http_calls"],
                 r["grow_ms"], r["grow_http_calls"], r["warm_p50_ms"], r["warm_p95_ms"]]
                for r in rows
            ],
        )
    )  # fmt: skip
    print("\n== token counts: targets ==")
    print(benchlib.targets_table(targets))
    benchlib.write_json(
        args.json,
        {
            "benchmark": "token_count",
            "machine": benchlib.machine(),
            "params": {"warm_n": warm_n, "sizes": sizes, "servers": urls, "runs": [r.name for r in runs]},
            "rows": rows,
            "targets": targets,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
