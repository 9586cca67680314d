"""Replies that fill a llama-server's shared KV cache: what callers get, and what it costs.

    nice .venv/bin/python bench/context_full.py [--rounds 3] [--ctx 1024] [--concurrent 2] [--modes off,on]

The probe-like run of issue 18: K concurrent requests (two by default) with a ~300-token prompt and no
max_tokens go to one real llama-server (SmolLM2-135M, `-c CTX --jinja`, its default slot count, whose slots
share one KV cache), streaming and non-streaming, for N rounds, in these modes:

* `alone`: one request at a time, fair share off (what a single caller gets: the whole context).
* `plain`: the same requests sent straight to the server with httpx, non-streaming (no adapter).
* `off`: the adapter, `llamafile_fair_share` off. A non-streamed reply the server aborts (HTTP 500
  "Context size has been exceeded.") is read again as a stream, which keeps its text (finish "length");
  a stream that ends in an `error:` event ends there with finish "length".
* `on`: `llamafile_fair_share=True`: max_tokens = n_ctx / slots - the exact prompt.

Printed per mode and stream/non-stream: replies with text, how they ended (finish_reason or exception),
tokens kept (the returned text tokenized by the server), chat requests sent, wall time.

Then the per-call cost on normal calls (a short reply that ends by itself, no max_tokens, a new prompt each
call): HTTP requests per call by path and the median call time, fair share off and on.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import statistics
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import litellm

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from litellm_llamafile.server.servers import SERVERS
from litellm_llamafile.wire.protocol import HttpCall
from litellm_llamafile.wire.transport import SyncDriver

TOPICS = [
    "Roman dodecahedrons",
    "the bronze traders of Britain",
    "the lighthouses of Alexandria",
    "the salt roads of the Sahara",
]


PROMPT_REPEATS = 12  # ~300 tokens with SmolLM2's template


def prompt_about(topic: str, repeats: int = PROMPT_REPEATS) -> str:
    return (
        f"Tell me everything about {topic}, in great detail, chapter by chapter, leaving nothing out. "
        * repeats
    )


class Sent:
    """HTTP requests the adapter sent, by path (wraps SyncDriver.send/events in this process only)."""

    def __init__(self) -> None:
        self.by_path: collections.Counter[str] = collections.Counter()
        send, events = SyncDriver.send, SyncDriver.events

        def counted_send(driver: SyncDriver, call: HttpCall) -> Any:
            self.by_path[call.path] += 1
            return send(driver, call)

        def counted_events(driver: SyncDriver, call: HttpCall) -> Any:
            self.by_path[call.path] += 1
            return events(driver, call)

        SyncDriver.send = counted_send  # type: ignore[method-assign]
        SyncDriver.events = counted_events  # type: ignore[method-assign]

    @property
    def chat(self) -> int:
        return self.by_path["/v1/chat/completions"]


def tokens_of(url: str, text: str) -> int:
    if not text:
        return 0
    return len(httpx.post(f"{url}/tokenize", json={"content": text}, timeout=60).json()["tokens"])


def one_call(url: str, mode: str, stream: bool, messages: list[dict[str, str]]) -> tuple[str, str]:
    """(text, how it ended: the finish_reason or the exception's class)."""
    try:
        if mode == "plain":
            answer = httpx.post(f"{url}/v1/chat/completions", json={"messages": messages}, timeout=600)
            if answer.status_code != 200:
                return "", f"HTTP {answer.status_code}"
            choice = answer.json()["choices"][0]
            return str(choice["message"]["content"] or ""), str(choice["finish_reason"])
        common: dict[str, Any] = {
            "model": "llamafile/smol",
            "api_base": url,
            "messages": messages,
            "timeout": 600,
        }
        if mode == "on":
            common["llamafile_fair_share"] = True
        if stream:
            built = litellm.stream_chunk_builder(list(litellm.completion(stream=True, **common)))
            assert built is not None
            choice = built.choices[0]
        else:
            choice = litellm.completion(**common).choices[0]
        return str(choice.message.content or ""), str(choice.finish_reason)
    except Exception as error:
        return "", type(error).__name__


def run_rounds(
    url: str, mode: str, stream: bool, workers: int, rounds: int, sent: Sent, repeats: int
) -> dict[str, Any]:
    ends: collections.Counter[str] = collections.Counter()
    with_text = kept = 0
    chat_before = sent.chat
    start = time.perf_counter()
    for number in range(rounds):
        batch = [
            [{"role": "user", "content": prompt_about(TOPICS[(number + i) % len(TOPICS)], repeats)}]
            for i in range(workers)
        ]
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda m: one_call(url, mode, stream, m), batch))
        for text, end in results:
            ends[end] += 1
            with_text += bool(text)
            kept += tokens_of(url, text)
    wall = time.perf_counter() - start
    calls = workers * rounds
    return {
        "mode": mode,
        "stream": stream,
        "calls": calls,
        "with text": with_text,
        "ended": ", ".join(f"{k} x{v}" for k, v in sorted(ends.items())),
        "tokens kept": kept,
        "chat requests": calls if mode == "plain" else sent.chat - chat_before,
        "wall s": round(wall, 1),
    }


def normal_call_cost(url: str, n: int, sent: Sent) -> list[dict[str, Any]]:
    """A short reply that ends by itself (no max_tokens), a new prompt each call: requests per call and
    the median call time, fair share off and on, interleaved so machine load hits both alike."""
    times: dict[bool, list[float]] = {False: [], True: []}
    paths: dict[bool, collections.Counter[str]] = {False: collections.Counter(), True: collections.Counter()}
    ends: dict[bool, collections.Counter[str]] = {False: collections.Counter(), True: collections.Counter()}
    for i in range(n):
        for fair in (False, True) if i % 2 == 0 else (True, False):
            messages = [{"role": "user", "content": f"Answer with one word. Is {i} a number?"}]
            before = collections.Counter(sent.by_path)
            start = time.perf_counter()
            reply = litellm.completion(
                model="llamafile/smol",
                api_base=url,
                messages=messages,
                temperature=0,
                llamafile_fair_share=fair,
            )
            times[fair].append((time.perf_counter() - start) * 1000)
            paths[fair].update(sent.by_path - before)
            ends[fair][str(reply.choices[0].finish_reason)] += 1
    return [
        {
            "fair share": "on" if fair else "off",
            "requests per call": ", ".join(f"{p} {c / n:g}" for p, c in sorted(paths[fair].items())),
            "ended": ", ".join(f"{k} x{v}" for k, v in sorted(ends[fair].items())),
            "p50 ms": round(statistics.median(times[fair]), 1),
        }
        for fair in (False, True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--normal-calls", type=int, default=10, help="0: skip the per-call cost")
    parser.add_argument(
        "--prompt-repeats", type=int, default=PROMPT_REPEATS, help="sentences in the prompt (12: ~300 tokens)"
    )
    parser.add_argument(
        "--modes", default="alone,plain,off,on", help="comma-separated, of alone,plain,off,on"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama-server -t (one thread: no spin-waits on a loaded machine)",
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    litellm_llamafile.register()
    litellm.suppress_debug_info = True  # stream_chunk_builder's "Provider List" notes for an unpriced model
    sent = Sent()
    # Default slots: one unified KV cache.
    server = EmbeddedServer(ctx_size=args.ctx, extra_args=("-t", str(args.threads))).start()
    url = server.base_url
    try:
        props = httpx.get(f"{url}/props", timeout=10).json()
        n_ctx = props.get("default_generation_settings", {}).get("n_ctx")
        slots = props.get("total_slots")
        prompt = litellm_llamafile.count_tokens(
            [{"role": "user", "content": prompt_about(TOPICS[0], args.prompt_repeats)}], api_base=url
        )
        print(f"llama-server -c {args.ctx} --jinja, {slots} slots, /props n_ctx {n_ctx}")
        print(f"prompt {prompt} tokens; fair share max_tokens = {n_ctx} // {slots} - {prompt}, at least 1")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        header = f"{'mode':<6} | {'stream':<6} | {'with text':>9} | {'ended':<40} | {'tokens kept':>11} | "
        print(header + f"{'chat requests':>13} | {'wall s':>6}")
        plan = [("alone", False, 1), ("plain", False, args.concurrent)]
        plan += [(mode, stream, args.concurrent) for mode in ("off", "on") for stream in (False, True)]
        plan = [step for step in plan if step[0] in modes]
        for mode, stream, workers in plan:
            SERVERS.forget()
            row = run_rounds(url, mode, stream, workers, args.rounds, sent, args.prompt_repeats)
            text = f"{row['with text']:>4}/{row['calls']:<4}"
            print(
                f"{row['mode']:<6} | {'yes' if stream else 'no':<6} | {text} | {row['ended']:<40} | "
                f"{row['tokens kept']:>11} | {row['chat requests']:>13} | {row['wall s']:>6}"
            )
        SERVERS.forget()
        if args.normal_calls:
            print(f"normal calls ({args.normal_calls} each, a new prompt per call, no max_tokens):")
        for row in normal_call_cost(url, args.normal_calls, sent) if args.normal_calls else []:
            print(
                f"  fair share {row['fair share']:<3} | {row['requests per call']} | {row['ended']} | "
                f"p50 {row['p50 ms']} ms"
            )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
