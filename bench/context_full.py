"""Replies that fill a llama-server's shared KV cache: what callers get, and what it costs.

    .venv/bin/python bench/context_full.py [--concurrent 4] [--ctx 1024] [--rounds 2]

K concurrent requests with a ~150-token prompt and no max_tokens (as a tool-calling probe sends them)
go to one real llama-server (SmolLM2, `-c CTX`, its default 4 slots sharing one KV cache), in three modes:

* `adapter`: today's adapter. A non-streamed reply the server aborts (HTTP 500 "Context size has been
  exceeded.") is read again as a stream, which keeps its text (finish_reason "length").
* `fair share`: `llamafile_fair_share=True`: max_tokens = n_ctx / slots - the exact prompt, so replies end
  before the cache fills.
* `plain request`: the same requests sent straight to the server with httpx (what a caller without the
  adapter gets from llama-server).

Printed per mode: replies with text, how they ended, server errors, chat requests sent, wall time. And the
per-call cost of fair share on a short request (one prompt count, cached after the first call).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import litellm

import litellm_llamafile
from litellm_llamafile.embedded_server import EmbeddedServer
from litellm_llamafile.protocol import HttpCall
from litellm_llamafile.servers import SERVERS
from litellm_llamafile.transport import SyncDriver

PROMPT = "Tell me everything about Roman dodecahedrons, in great detail, chapter by chapter. " * 8


class ChatRequests:
    """Chat requests the adapter sent (wraps SyncDriver.send in this process only)."""

    def __init__(self) -> None:
        self.count = 0
        original = SyncDriver.send

        def counted(driver: SyncDriver, call: HttpCall) -> Any:
            if call.path == "/v1/chat/completions":
                self.count += 1
            return original(driver, call)

        SyncDriver.send = counted  # type: ignore[method-assign]


def run_mode(url: str, mode: str, workers: int, sent: ChatRequests) -> dict[str, Any]:
    messages = [{"role": "user", "content": PROMPT}]

    def one(_: int) -> tuple[str, str]:
        try:
            if mode == "plain request":
                answer = httpx.post(
                    f"{url}/v1/chat/completions",
                    json={"messages": messages, "temperature": 0.8},
                    timeout=600,
                )
                if answer.status_code != 200:
                    return "", f"HTTP {answer.status_code}"
                choice = answer.json()["choices"][0]
                return str(choice["message"]["content"] or ""), str(choice["finish_reason"])
            extra = {"llamafile_fair_share": True} if mode == "fair share" else {}
            reply = litellm.completion(
                model="llamafile/smol", api_base=url, messages=messages, temperature=0.8, timeout=600, **extra
            )
            choice = reply.choices[0]
            return str(choice.message.content or ""), str(choice.finish_reason)
        except Exception as error:
            return "", type(error).__name__

    before = sent.count
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, range(workers)))
    wall = time.perf_counter() - start
    ends: dict[str, int] = {}
    for _, end in results:
        ends[end] = ends.get(end, 0) + 1
    return {
        "mode": mode,
        "with text": sum(1 for text, _ in results if text),
        "ended": ", ".join(f"{k} x{v}" for k, v in sorted(ends.items())),
        "chat requests": sent.count - before if mode != "plain request" else workers,
        "wall s": round(wall, 1),
    }


def fair_share_cost(url: str, n: int) -> tuple[float, float]:
    """What fair share adds to a call: one exact prompt count (ms), for a new and a repeated opening."""
    cold, warm = [], []
    for i in range(n):
        messages = [{"role": "user", "content": f"Say hi, number {i}."}]
        for bucket in (cold, warm):
            start = time.perf_counter()
            litellm_llamafile.count_tokens(messages, api_base=url)
            bucket.append((time.perf_counter() - start) * 1000)
    return statistics.median(cold), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--ctx", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    litellm_llamafile.register()
    sent = ChatRequests()
    server = EmbeddedServer(ctx_size=args.ctx).start()  # default slots: one unified KV cache
    try:
        props = httpx.get(f"{server.base_url}/props", timeout=10).json()
        n_ctx = props.get("default_generation_settings", {}).get("n_ctx")
        print(f"llama-server -c {args.ctx}, {props.get('total_slots')} slots, /props n_ctx {n_ctx}")
        print(f"{'mode':<14} | {'with text':>9} | {'ended':<28} | {'chat requests':>13} | {'wall s':>6}")
        for _ in range(args.rounds):
            for mode in ("plain request", "adapter", "fair share"):
                SERVERS.forget()
                row = run_mode(server.base_url, mode, args.concurrent, sent)
                print(
                    f"{row['mode']:<14} | {row['with text']:>5}/{args.concurrent:<3} | {row['ended']:<28} | "
                    f"{row['chat requests']:>13} | {row['wall s']:>6}"
                )
        cold, warm = fair_share_cost(server.base_url, 20)
        print(f"fair share's prompt count per call, p50: {cold:.1f} ms new, {warm:.3f} ms repeated")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
