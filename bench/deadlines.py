"""`timeout=` against a server that sends its response head one byte at a time (issue 24, item 2): how
long each kind of call takes to end, and what it ends with.

    python bench/deadlines.py [--timeout 2] [--gap 0.5] [--package PATH]

The server (FaultyServer from tests/support, on 127.0.0.1) sends a 70-byte head, one byte every `--gap`
seconds (35 s in all at 0.5 s), then nothing. Every call gets `timeout=--timeout`: each read is quick,
so only a deadline for the whole call stops it. `--package PATH` imports litellm_llamafile from another
checkout (e.g. the commit before the fix), so the same script prints the figures before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported)

ROOT = Path(__file__).resolve().parents[1]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 20 + b"\r\n"
HI = [{"role": "user", "content": "Hi"}]


def calls(url: str, timeout: float) -> dict[str, Callable[[], Any]]:
    import litellm

    common: dict[str, Any] = {"model": "llamafile/bench", "api_base": url, "timeout": timeout}

    def stream() -> Any:
        return list(litellm.completion(messages=HI, stream=True, **common))

    async def astream() -> Any:
        return [chunk async for chunk in await litellm.acompletion(messages=HI, stream=True, **common)]

    return {
        "completion": lambda: litellm.completion(messages=HI, **common),
        "acompletion": lambda: asyncio.run(litellm.acompletion(messages=HI, **common)),
        "completion, stream": stream,
        "acompletion, stream": lambda: asyncio.run(astream()),
        "embedding": lambda: litellm.embedding(input=["Hi"], **common),
        "aembedding": lambda: asyncio.run(litellm.aembedding(input=["Hi"], **common)),
    }


def ended_with(run: Callable[[], Any]) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        run()
        outcome = "an answer"
    except Exception as error:  # the figure is what the caller gets
        inner = getattr(error, "original_exception", None) or error
        outcome = type(inner).__name__
    return time.perf_counter() - start, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="timeout= of every call (s)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two bytes of the head")
    parser.add_argument("--package", help="import litellm_llamafile from this checkout instead")
    args = parser.parse_args()
    sys.path[:0] = [args.package] if args.package else []
    sys.path.append(str(ROOT))  # tests.support, for the fake server
    import litellm_llamafile
    from tests.support.fake_server import Exchange, FaultyServer, answer_chat

    def trickle(exchange: Exchange) -> None:
        exchange.trickle(HEAD, args.gap)

    litellm_llamafile.register()
    warm = FaultyServer(answer_chat("warm"))  # LiteLLM's first call pays for imports: not measured
    try:
        calls(warm.url, args.timeout)["completion"]()
    finally:
        warm.close()
    server = FaultyServer(trickle, every=trickle)
    print(f"package: {litellm_llamafile.__file__}")
    print(f"head: {len(HEAD)} bytes, one every {args.gap:g} s; timeout={args.timeout:g}")
    print(f"{'call':22} {'ended after':>12}   with")
    try:
        for name, run in calls(server.url, args.timeout).items():
            seconds, outcome = ended_with(run)
            print(f"{name:22} {seconds:11.2f}s   {outcome}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
