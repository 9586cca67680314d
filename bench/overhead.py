"""Per-request latency of three client paths to the same llama.cpp server, same request body:

* raw      - httpx.Client POSTing the body to /v1/chat/completions (the floor: no LiteLLM at all);
* builtin  - litellm.completion(model="llamafile/...") through LiteLLM's built-in OpenAI passthrough
             (litellm_llamafile.unregister());
* adapter  - the same litellm.completion call routed to this adapter (litellm_llamafile.register()).

Non-streaming: wall time of the whole call. Streaming: time to the first chunk carrying content (TTFC)
and to the end of the stream. Measured sequentially (one request at a time, sync API) against the
instant stub server (tests/support/fake_server.py, in its own process: what is left is client overhead) and
against a real llama.cpp server (SmolLM2-135M; there generation dominates and ratios approach 1).

Paths are measured in interleaved blocks (rounds, rotating order) after a warm-up, so drift in machine
load hits all three alike.

    python bench/overhead.py [--quick] [--json out.json] [--stub-n 300] [--real-n 30] [--no-real]
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import benchlib  # first: sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported
import httpx
import litellm

import litellm_llamafile

ADAPTER_CALLS = benchlib.AdapterCalls()

PATHS = ("raw", "builtin", "adapter")
MODES = ("json", "stream")
MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Say hello to the benchmark in a few words."},
]

# One request: returns (seconds to the first content chunk or None, seconds to the end, reply text).
Call = Callable[[], tuple[float | None, float, str]]


class Paths:
    """The three ways to send the same request to one server."""

    def __init__(self, base_url: str, max_tokens: int) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/v1/chat/completions"
        self.body: dict[str, Any] = {
            "model": benchlib.MODEL,
            "messages": MESSAGES,
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        self.stream_body = {**self.body, "stream": True, "stream_options": {"include_usage": True}}
        self.client = httpx.Client(
            trust_env=False,
            timeout=600.0,
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        )

    def close(self) -> None:
        self.client.close()

    # -- raw httpx ----------------------------------------------------------------------------------

    def raw_json(self) -> tuple[float | None, float, str]:
        start = time.perf_counter()
        response = self.client.post(self.url, json=self.body)
        response.raise_for_status()
        text = response.json()["choices"][0]["message"]["content"]
        return None, time.perf_counter() - start, text

    def raw_stream(self) -> tuple[float | None, float, str]:
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        # As the adapter does: llama-server closes a connection after a stream (see client._headers).
        headers = {"Connection": "close"}
        with self.client.stream("POST", self.url, json=self.stream_body, headers=headers) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                choices = event.get("choices") or []
                content = choices[0].get("delta", {}).get("content") if choices else None
                if content:
                    if first is None:
                        first = time.perf_counter() - start
                    parts.append(content)
        return first, time.perf_counter() - start, "".join(parts)

    # -- litellm (built-in passthrough or adapter, depending on the routing) --------------------------

    def _litellm_kwargs(self) -> dict[str, Any]:
        # api_base ends in /v1: what the built-in passthrough needs; the adapter accepts it too.
        return {
            "model": f"llamafile/{benchlib.MODEL}",
            "messages": MESSAGES,
            "max_tokens": self.body["max_tokens"],
            "temperature": 0.0,
            "api_base": f"{self.base_url}/v1",
        }

    def litellm_json(self) -> tuple[float | None, float, str]:
        start = time.perf_counter()
        response = litellm.completion(**self._litellm_kwargs())
        text = response.choices[0].message.content or ""
        return None, time.perf_counter() - start, text

    def litellm_stream(self) -> tuple[float | None, float, str]:
        start = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        stream = litellm.completion(
            **self._litellm_kwargs(), stream=True, stream_options={"include_usage": True}
        )
        for chunk in stream:
            content = chunk.choices[0].delta.content if chunk.choices else None
            if content:
                if first is None:
                    first = time.perf_counter() - start
                parts.append(content)
        return first, time.perf_counter() - start, "".join(parts)

    def call(self, path: str, mode: str) -> Call:
        if path == "raw":
            return self.raw_stream if mode == "stream" else self.raw_json
        return self.litellm_stream if mode == "stream" else self.litellm_json


def route(path: str) -> None:
    """Point `llamafile/` at the adapter or give it back to LiteLLM's passthrough (untimed)."""
    if path == "adapter":
        litellm_llamafile.register()
    elif path == "builtin":
        litellm_llamafile.unregister()


def run_one(path: str, mode: str, call: Call, samples: dict[tuple[str, str], dict[str, list[float]]]) -> str:
    before = ADAPTER_CALLS.count
    first, total, text = call()
    handled = ADAPTER_CALLS.count - before
    if handled != (1 if path == "adapter" else 0):  # proves which path really answered
        raise RuntimeError(f"{path}/{mode}: adapter handled {handled} calls")
    bucket = samples.setdefault((path, mode), {"total": [], "first": []})
    bucket["total"].append(total)
    if first is not None:
        bucket["first"].append(first)
    return text


def measure(
    base_url: str, *, n: int, warmup: int, rounds: int, max_tokens: int, check_same_reply: bool
) -> dict[tuple[str, str], dict[str, list[float]]]:
    paths = Paths(base_url, max_tokens)
    try:
        replies: dict[tuple[str, str], str] = {}
        throwaway: dict[tuple[str, str], dict[str, list[float]]] = {}
        for mode in MODES:
            for path in PATHS:
                route(path)
                for _ in range(warmup):
                    replies[(path, mode)] = run_one(path, mode, paths.call(path, mode), throwaway)
        if check_same_reply and len(set(replies.values())) != 1:
            raise RuntimeError(f"the paths got different replies: {replies}")
        samples: dict[tuple[str, str], dict[str, list[float]]] = {}
        per_block = max(1, n // rounds)
        for number in range(rounds):
            order = PATHS[number % 3 :] + PATHS[: number % 3]
            for mode in MODES:
                for path in order:
                    route(path)
                    call = paths.call(path, mode)
                    cpu = time.process_time()
                    for _ in range(per_block):
                        run_one(path, mode, call, samples)
                    samples[(path, mode)].setdefault("cpu", []).append(
                        (time.process_time() - cpu) / per_block
                    )
        return samples
    finally:
        paths.close()
        litellm_llamafile.register()


def rows_for(server: str, samples: dict[tuple[str, str], dict[str, list[float]]]) -> list[dict[str, Any]]:
    rows = []
    for mode in MODES:
        for path in PATHS:
            bucket = samples[(path, mode)]
            total = benchlib.latency_stats(bucket["total"])
            row: dict[str, Any] = {
                "server": server,
                "mode": mode,
                "path": path,
                "n": total["n"],
                "p50_ms": total["p50_ms"],
                "p95_ms": total["p95_ms"],
                "mean_ms": total["mean_ms"],
                # Process CPU (all client threads, LiteLLM's logging thread included; not the server's).
                "cpu_ms_per_req": 1000.0 * sum(bucket["cpu"]) / len(bucket["cpu"]),
            }
            if mode == "stream":
                first = benchlib.latency_stats(bucket["first"])
                row["ttfc_p50_ms"] = first["p50_ms"]
                row["ttfc_p95_ms"] = first["p95_ms"]
            rows.append(row)
    return rows


def ratio_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """adapter/builtin, adapter/raw, builtin/raw for each server, mode and metric (p50 and p95)."""
    index = {(r["server"], r["mode"], r["path"]): r for r in rows}
    out = []
    for server, mode in dict.fromkeys((r["server"], r["mode"]) for r in rows):
        metrics = ["p50_ms", "p95_ms", "cpu_ms_per_req"]
        metrics += ["ttfc_p50_ms", "ttfc_p95_ms"] if mode == "stream" else []
        for metric in metrics:
            raw, builtin, adapter = (index[(server, mode, p)][metric] for p in PATHS)
            out.append(
                {
                    "server": server,
                    "mode": mode,
                    "metric": metric,
                    "adapter/builtin": benchlib.ratio(adapter, builtin),
                    "adapter/raw": benchlib.ratio(adapter, raw),
                    "builtin/raw": benchlib.ratio(builtin, raw),
                    "adapter-raw_ms": adapter - raw,
                    "builtin-raw_ms": builtin - raw,
                    "adapter-builtin_ms": adapter - builtin,
                }
            )
    return out


def targets_for(ratios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in ratios:
        wanted = "ttfc_p50_ms" if r["mode"] == "stream" else "p50_ms"
        if r["server"] != "stub" or r["metric"] != wanted:
            continue
        label = "non-streaming p50" if r["mode"] == "json" else "streaming TTFC p50"
        out.append(benchlib.target(f"stub {label}: adapter/builtin", r["adapter/builtin"], "<=", 1.0, "x"))
        out.append(benchlib.target(f"stub {label}: adapter/raw httpx", r["adapter/raw"], "<=", 1.5, "x"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.base_parser(__doc__.split("\n\n")[0])
    benchlib.real_url_args(parser)
    parser.add_argument("--stub-n", type=int, help="measured requests per path and mode on the stub")
    parser.add_argument("--real-n", type=int, help="measured requests per path and mode on the real server")
    parser.add_argument("--warmup", type=int, help="warm-up requests per path and mode (stub; real: 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved blocks per path")
    parser.add_argument("--real-max-tokens", type=int, default=8, help="max_tokens on the real server")
    parser.add_argument("--no-stub", action="store_true")
    parser.add_argument("--no-real", action="store_true")
    args = parser.parse_args(argv)
    benchlib.quiet_litellm()
    litellm_llamafile.register()

    stub_n = benchlib.scaled(args, 300, 30, args.stub_n)
    real_n = benchlib.scaled(args, 30, 3, args.real_n)
    warmup = args.warmup if args.warmup is not None else (5 if args.quick else 20)
    rows: list[dict[str, Any]] = []
    params = {"stub_n": stub_n, "real_n": real_n, "warmup": warmup, "rounds": args.rounds}

    if not args.no_stub:
        with benchlib.StubServer() as stub:
            benchlib.say(f"stub {stub.base_url}: {stub_n} requests per path and mode")
            samples = measure(
                stub.base_url,
                n=stub_n,
                warmup=warmup,
                rounds=min(args.rounds, stub_n),
                max_tokens=16,
                check_same_reply=True,
            )
            rows += rows_for("stub", samples)
    if not args.no_real:
        with benchlib.real_server(args.real_url, "chatml") as url:
            benchlib.say(
                f"real {url}: {real_n} requests per path and mode, max_tokens={args.real_max_tokens}"
            )
            samples = measure(
                url,
                n=real_n,
                warmup=1 if args.quick else 2,
                rounds=min(args.rounds, real_n),
                max_tokens=args.real_max_tokens,
                check_same_reply=False,
            )
            rows += rows_for("real", samples)
            params["real_url"] = url

    ratios = ratio_rows(rows)
    targets = targets_for(ratios)
    print("\n== overhead: per-request latency (sequential, sync litellm.completion) ==")
    print(
        benchlib.table(
            [
                "server",
                "mode",
                "path",
                "n",
                "p50 ms",
                "p95 ms",
                "mean ms",
                "TTFC p50",
                "TTFC p95",
                "CPU ms/req",
            ],
            [
                [
                    r["server"],
                    r["mode"],
                    r["path"],
                    r["n"],
                    r["p50_ms"],
                    r["p95_ms"],
                    r["mean_ms"],
                    r.get("ttfc_p50_ms", ""),
                    r.get("ttfc_p95_ms", ""),
                    r["cpu_ms_per_req"],
                ]
                for r in rows
            ],
        )
    )
    print("\n== overhead: ratios and added milliseconds ==")
    print(
        benchlib.table(
            ["server", "mode", "metric", "adapter/builtin", "adapter/raw", "builtin/raw", "adapter-raw ms",
             "builtin-raw ms", "adapter-builtin ms"],
            [
                [r["server"], r["mode"], r["metric"], r["adapter/builtin"], r["adapter/raw"],
                 r["builtin/raw"], r["adapter-raw_ms"], r["builtin-raw_ms"], r["adapter-builtin_ms"]]
                for r in ratios
            ],
        )
    )  # fmt: skip
    if targets:
        print("\n== overhead: targets ==")
        print(benchlib.targets_table(targets))
    benchlib.write_json(
        args.json,
        {
            "benchmark": "overhead",
            "machine": benchlib.machine(),
            "params": params,
            "rows": rows,
            "ratios": ratios,
            "targets": targets,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
