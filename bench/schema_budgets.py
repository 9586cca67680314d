"""What a hostile or careless tool schema costs (issue 24, item 1): each of the hardening review's
reproductions, and the heaviest schemas the default limits still accept, built into a request in
process (time and bytes sent), then sent through a real `litellm --config` proxy in front of the instant
stub server while `/health/liveliness` is polled every 10 ms: the longest the proxy left it waiting.

    .venv/bin/python bench/schema_budgets.py [--runs 5] [--no-proxy]

Before the fix (2026-12-06 review, file:line of that day): depth 14/16/18/20 optional-only objects took
0.1/0.5/1.8/7.1 s, a 1.9 KB type-list schema built a 38.8 MB prompt in 7 s, an allOf of five anyOfs
froze the proxy 48 s, and liveliness waited 7.9 s behind a 1 KB request.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import benchlib
import httpx

from litellm_llamafile.proxy_config import render_config, running_proxy
from litellm_llamafile.settings import TemplateName
from litellm_llamafile.transformation import build_chat_request

sys.path.insert(0, str(benchlib.REPO))
from tests.support.schemas import (
    cross_product,
    nested_optional,
    nested_required,
    reference_fan_out,
    type_lists,
)


def _object(**members: Any) -> dict[str, Any]:
    return {"type": "object", "properties": members, "required": list(members)}


# name -> (parameters, tool_choice, thought schema)
CASES: dict[str, tuple[Any, str, Any]] = {
    "optional-only, 20 deep": (nested_optional(20), "required", None),
    "optional-only, 100 deep": (nested_optional(100), "required", None),
    "type lists x40, 4 deep (auto)": (type_lists(4, 40), "auto", None),
    "allOf of 5 anyOf of 10": (cross_product(5, 10), "required", None),
    "allOf of 6 anyOf of 10": (cross_product(6, 10), "required", None),
    "600 $refs to 150 members (thought)": (_object(), "required", reference_fan_out(600, 150)),
    "maxLength 10**12": (_object(s={"type": "string", "maxLength": 10**12}), "required", None),
    "minItems 5 > maxItems 2": (_object(s={"type": "array", "minItems": 5, "maxItems": 2}), "required", None),
    "maximum -10**300": (_object(n={"type": "integer", "maximum": -(10**300)}), "required", None),
    "required, 300 deep": (nested_required(300), "required", None),
    # the heaviest the default limits accept
    "accepted: optional-only, 30 deep": (nested_optional(30), "required", None),
    "accepted: allOf of 4 anyOf of 4": (cross_product(4, 4), "required", None),
    "accepted: 100 $refs to 30 members": (reference_fan_out(100, 30), "required", None),
}


def _tools(parameters: Any) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "probe", "parameters": parameters}}]


def in_process(runs: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for name, (parameters, choice, thought) in CASES.items():
        seconds: list[float] = []
        outcome = ""
        for _ in range(runs):
            start = time.perf_counter()
            try:
                built = build_chat_request(
                    "m",
                    [{"role": "user", "content": "hi"}],
                    {"tools": _tools(parameters), "tool_choice": choice, "max_tokens": 512},
                    TemplateName.CHATML,
                    constraint="grammar",
                    thought_schema=thought,
                    constrain_auto="thought" if thought else False,
                )
                outcome = f"sent {len(json.dumps(built.payload)):,} B"
            except Exception as error:
                outcome = f"{type(error).__name__}: {str(error).split('refused: ')[-1][:70]}"
            seconds.append(time.perf_counter() - start)
        size = len(json.dumps([*_tools(parameters), thought or {}], default=str))
        rows.append(
            [name, f"{size:,}", benchlib.fmt(min(seconds)), benchlib.fmt(statistics.median(seconds)), outcome]
        )
    return rows


class _Liveliness:
    """Polls the proxy's /health/liveliness every 10 ms on its own thread; `longest` is the longest
    answer of the current window, in seconds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                client.get(f"{self.url}/health/liveliness")
                self.waits.append(time.perf_counter() - start)
                time.sleep(0.01)

    def window(self) -> list[float]:
        waits, self.waits = self.waits, []
        return waits

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def through_proxy(runs: int) -> list[list[object]]:
    """Each case through the proxy on its own, `runs` times, with liveliness polled meanwhile; a plain
    chat first, for what the proxy itself costs."""
    rows: list[list[object]] = []
    with benchlib.StubServer() as stub, tempfile.TemporaryDirectory() as work:
        config = Path(work) / "proxy.yaml"
        config.write_text(render_config([("m", stub.base_url)]))
        with (
            running_proxy(config, log=Path(work) / "proxy.log") as (url, key),
            httpx.Client(timeout=300) as http,
        ):
            headers = {"Authorization": f"Bearer {key}"}
            # LiteLLM imports a good deal on first use, failures included (its guardrail mappings): once,
            # before measuring, so the figures are the adapter's and not the proxy's warm-up.
            refused = {"type": "object", "properties": {"s": {"type": "string", "maxLength": "x"}}}
            for warm_up in (None, refused):
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                if warm_up is not None:
                    body.update(tools=_tools(warm_up), tool_choice="required")
                http.post(f"{url}/v1/chat/completions", json=body, headers=headers)
            liveliness = _Liveliness(url)
            cases: dict[str, tuple[Any, str, Any]] = {"plain chat, no tools": (None, "auto", None), **CASES}
            for name, (parameters, choice, thought) in cases.items():
                body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                if parameters is not None:
                    body.update(tools=_tools(parameters), tool_choice=choice, max_tokens=512)
                if thought:
                    body["llamafile_thought_schema"] = thought
                seconds: list[float] = []
                statuses: set[int] = set()
                liveliness.window()
                for _ in range(runs):
                    start = time.perf_counter()
                    statuses.add(
                        http.post(f"{url}/v1/chat/completions", json=body, headers=headers).status_code
                    )
                    seconds.append(time.perf_counter() - start)
                waits = liveliness.window()
                rows.append(
                    [
                        name,
                        "/".join(map(str, sorted(statuses))),
                        benchlib.fmt(statistics.median(seconds)),
                        benchlib.fmt(max(waits, default=0) * 1000),
                    ]
                )
            liveliness.stop()
    return rows


def main() -> int:
    parser = benchlib.base_parser(__doc__ or "")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-proxy", action="store_true")
    args = parser.parse_args()
    benchlib.quiet_litellm()
    print(benchlib.table(["schema", "bytes in", "min s", "median s", "outcome"], in_process(args.runs)))
    if not args.no_proxy:
        print()
        headers = ["through the proxy, one at a time", "HTTP", "median s", "longest liveliness wait, ms"]
        print(benchlib.table(headers, through_proxy(args.runs)))
    print(f"\n{benchlib.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
