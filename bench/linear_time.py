"""Linear time of the reply parser and stream assembler on adversarial input: each shape is doubled
three times and the time ratio per doubling is printed (≈2 is linear, ≈4 quadratic).

    python bench/linear_time.py [--base CHARS]

Shapes: issue 14's `[TOOL_CALLS] see the [ARGS] section` reply, repeated or unclosed markers of every
family in the table, nesting, harmony headers that never end, and 1-character streaming of prose, of a
long open call and of a long think block. Times are the best of 3 runs; on a loaded machine the ratios
are noisy, the 2x-vs-4x difference is not.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.prompt.roles import reshape_messages
from litellm_llamafile.reply.families import FAMILIES, REASONING
from litellm_llamafile.reply.parsing import parse_tool_calls
from litellm_llamafile.reply.streaming import StreamAssembler

TOOLS = ["get", "search"]


def one_shot(make: Callable[[int], str]) -> Callable[[int], None]:
    def run(n: int) -> None:
        parse_tool_calls(make(n), TOOLS)

    return run


def streamed(make: Callable[[int], str], step: int = 1) -> Callable[[int], None]:
    def run(n: int) -> None:
        text = make(n)
        assembler = StreamAssembler(frozenset(TOOLS), parse_tools=True)
        for i in range(0, len(text), step):
            assembler.feed(text[i : i + step])
            assembler.take_reasoning()
        assembler.finish("stop")

    return run


def reshaped(make: Callable[[int], list[dict[str, str]]]) -> Callable[[int], None]:
    def run(n: int) -> None:
        reshape_messages(make(n), TemplateName.MISTRAL)

    return run


def shapes() -> dict[str, Callable[[int], None]]:
    """name -> run(n), n being the size in repetitions of a unit of about 10-30 characters."""
    found: dict[str, Callable[[int], None]] = {
        "[ARGS] in prose after [TOOL_CALLS]": one_shot(
            lambda n: "[TOOL_CALLS] " + "see the [ARGS] section " * n
        ),
        "name[ARGS]{ repeated": one_shot(lambda n: "[TOOL_CALLS]" + "get[ARGS]{" * n),
        "nested [": one_shot(lambda n: "[" * (20 * n)),
        "open JSON call": one_shot(lambda n: '{"name": "get", "arguments": ' * n),
        "harmony headers never ending": one_shot(lambda n: ("<|start|>" + "x" * 20) * n),
        "pythonic [get( repeated": one_shot(lambda n: "[get(" * n),
        "1-char stream: prose": streamed(lambda n: "Roman dodecahedrons are bronze. " * n),
        "1-char stream: one long call": streamed(
            lambda n: '{"name": "get", "arguments": {"q": "' + "abc " * (8 * n) + '"}}'
        ),
        "1-char stream: long think block": streamed(lambda n: "<think>" + "hmm, " * (6 * n) + "</think>ok"),
        "1-char stream: [ARGS] case": streamed(lambda n: "[TOOL_CALLS] " + "see the [ARGS] section " * n),
    }
    for family in FAMILIES:
        opener = family.opens
        found[f"{family.name}: opener repeated"] = one_shot(lambda n, o=opener: (o + " get ") * n)
        found[f"{family.name}: one unclosed block"] = one_shot(lambda n, o=opener: o + '{"a": [1, "x"], ' * n)
        found[f"{family.name}: 1-char stream of a block"] = streamed(
            lambda n, o=opener, c=(family.closes or ("",))[0]: o + 'get\n{"q": "' + "xy " * (6 * n) + '"}' + c
        )
    for opener in REASONING:
        found[f"reasoning {opener} repeated"] = one_shot(lambda n, o=opener: (o + "thought ") * n)
    found["roles: consecutive user turns, strict template"] = reshaped(
        lambda n: [{"role": "user", "content": f"turn {i}"} for i in range(2 * n)]
    )
    found["roles: a long agent history, strict template"] = reshaped(
        lambda n: [{"role": ("user", "assistant", "tool")[i % 3], "content": f"t{i}"} for i in range(n)]
    )
    return found


def best_of(run: Callable[[int], None], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2000, help="repetitions at the smallest size")
    parser.add_argument("--only", default="", help="run shapes whose name contains this")
    args = parser.parse_args()
    sizes = [args.base * 2**k for k in range(4)]
    print(f"{'shape':52} " + " ".join(f"{'n=' + str(s):>10}" for s in sizes) + "   ratios per doubling")
    worst = 0.0
    for name, run in shapes().items():
        if args.only not in name:
            continue
        times = [best_of(run, n) for n in sizes]
        ratios = [b / a if a > 0 else float("nan") for a, b in itertools.pairwise(times)]
        worst = max(worst, ratios[-1])
        print(
            f"{name[:52]:52} "
            + " ".join(f"{t * 1000:9.1f}ms" for t in times)
            + "   "
            + " ".join(f"{r:4.2f}" for r in ratios)
        )
    print(f"worst last-doubling ratio: {worst:.2f} (2 = linear, 4 = quadratic)")


if __name__ == "__main__":
    main()
