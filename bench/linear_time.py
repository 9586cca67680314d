"""Linear time of the reply parser and stream assembler on adversarial input: each shape is doubled
three times and the time ratio per doubling is printed (≈2 is linear, ≈4 quadratic).

    python bench/linear_time.py [--base REPETITIONS] [--only NAME]
    python bench/linear_time.py --kb 10 100 1000 [--step 4]   (sizes in KB; ratio per 10x about 10 = linear)

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
from litellm_llamafile.reply.offered import Offered
from litellm_llamafile.reply.parsing import parse_tool_calls
from litellm_llamafile.reply.streaming import StreamAssembler

TOOLS = [
    {
        "type": "function",
        "function": {"name": n, "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
    }
    for n in ("get", "search")
]
NAMES = frozenset({"get", "search"})
OFFERED = Offered.of(TOOLS)
DSML = "\uff5cDSML\uff5c"


class Run:
    """A shape: `run(n)` parses an input of n repetitions; `size(n)` is its length in characters."""

    def __init__(
        self,
        run: Callable[[int], None],
        make: Callable[[int], object] | None = None,
        *,
        forced: bool | None = None,
    ) -> None:
        self.run = run
        self.make = make
        self.forced = forced  # a streamed shape: forced or not; None: parsed in one piece

    def __call__(self, n: int) -> None:
        self.run(n)

    def size(self, n: int) -> int | None:
        made = self.make(n) if self.make is not None else None
        return len(made) if isinstance(made, str) else None


def one_shot(make: Callable[[int], str]) -> Run:
    return Run(lambda n: parse_tool_calls(make(n), OFFERED) and None, make)


def streamed(make: Callable[[int], str], step: int = 1, *, forced: bool = False) -> Run:
    def run(n: int) -> None:
        text = make(n)
        assembler = StreamAssembler(OFFERED, parse_tools=True, forced=forced)
        for i in range(0, len(text), step):
            assembler.feed(text[i : i + step])
            assembler.take_reasoning()
            assembler.take_calls()
        assembler.finish("stop")

    return Run(run, make, forced=forced)


# Values that quote their family's closing tag again and again (each one is looked past), per format.
QUOTED_CLOSERS = {
    "qwen3_coder": (
        "<tool_call><function=get><parameter=q>",
        "</parameter> x ",
        "</parameter></function></tool_call>",
    ),
    "glm": (
        "<tool_call>get<arg_key>q</arg_key><arg_value>",
        "</arg_value> x </tool_call> y ",
        "</arg_value></tool_call>",
    ),
    "dsml": (
        f'<{DSML}function_calls><{DSML}invoke name="get"><{DSML}parameter name="q" string="true">',
        f"</{DSML}parameter> x ",
        f"</{DSML}parameter></{DSML}invoke></{DSML}function_calls>",
    ),
    "kimi_k3": (
        '<|open|>tools<|sep|><|open|>call tool="get"<|sep|><|open|>argument key="q" type="string"<|sep|>',
        "<|close|>argument<|sep|> x ",
        "<|close|>argument<|sep|><|close|>call<|sep|><|close|>tools<|sep|>",
    ),
    "gemma4": ('<|tool_call>call:get{q:<|"|>', "<tool_call|> } x ", '<|"|>}<tool_call|>'),
    "hermes": ('<tool_call>{"name": "get", "arguments": {"q": "', '</tool_call> \\" x ', '"}}</tool_call>'),
    "bare json": ('{"name": "get", "arguments": {"q": "', "<tool_call> [TOOL_CALLS] x ", '"}}'),
}


def reshaped(make: Callable[[int], list[dict[str, str]]]) -> Run:
    return Run(lambda n: reshape_messages(make(n), TemplateName.MISTRAL) and None)


def shapes() -> dict[str, Run]:
    """name -> run(n), n being the size in repetitions of a unit of about 10-30 characters."""
    found: dict[str, Run] = {
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
    for name, (head, unit, tail) in QUOTED_CLOSERS.items():
        found[f"{name}: closers quoted in a value"] = one_shot(
            lambda n, h=head, u=unit, t=tail: h + u * n + t
        )
        found[f"{name}: 1-char stream, closers quoted"] = streamed(
            lambda n, h=head, u=unit, t=tail: h + u * n + t
        )
    found["forced call: 1-char stream of a long call"] = streamed(
        lambda n: '{"name": "get", "arguments": {"q": "' + "abc " * (8 * n) + '"}}', forced=True
    )
    found["prose: apostrophes inside brackets"] = one_shot(lambda n: "[it's " * n)
    found["harmony to=functions. repeated"] = one_shot(lambda n: " to=functions.get " * n)
    found["kimi_k3 sections repeated"] = one_shot(
        lambda n: "<|open|>response<|sep|>hi<|close|>response<|sep|>" * n
    )
    found["1-char stream: whitespace-only deltas"] = streamed(lambda n: "x" + " " * (20 * n) + "y")
    found["roles: consecutive user turns, strict template"] = reshaped(
        lambda n: [{"role": "user", "content": f"turn {i}"} for i in range(2 * n)]
    )
    found["roles: a long agent history, strict template"] = reshaped(
        lambda n: [{"role": ("user", "assistant", "tool")[i % 3], "content": f"t{i}"} for i in range(n)]
    )
    return found


def best_of(run: Run, n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - start)
    return best


def by_doubling(only: str, base: int) -> None:
    sizes = [base * 2**k for k in range(4)]
    print(f"{'shape':52} " + " ".join(f"{'n=' + str(s):>10}" for s in sizes) + "   ratios per doubling")
    worst = 0.0
    for name, run in shapes().items():
        if only not in name:
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


def by_size(only: str, kilobytes: list[int], step: int) -> None:
    """Each shape at about these input sizes (streamed ones `step` characters, about a token, at a time):
    the time and its ratio per size step (10x the input: about 10 is linear, about 100 quadratic)."""
    print(f"{'shape':52} " + " ".join(f"{str(k) + ' KB':>10}" for k in kilobytes) + "   ratio per step")
    for name, run in shapes().items():
        unit = (run.size(2) or 0) - (run.size(1) or 0)
        if only not in name or unit <= 0:
            continue
        if run.forced is not None:  # streamed about a token at a time
            run = streamed(run.make, step, forced=run.forced)  # type: ignore[arg-type]
        run(1)  # warm up: patterns compile on first use
        times = [best_of(run, max(1, k * 1024 // unit), repeats=1) for k in kilobytes]
        ratios = [b / a if a > 0 else float("nan") for a, b in itertools.pairwise(times)]
        print(
            f"{name[:52]:52} "
            + " ".join(f"{t * 1000:9.1f}ms" for t in times)
            + "   "
            + " ".join(f"{r:6.1f}" for r in ratios)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2000, help="repetitions at the smallest size")
    parser.add_argument("--only", default="", help="run shapes whose name contains this")
    parser.add_argument(
        "--kb", type=int, nargs="+", help="input sizes in KB instead of doublings (10 100 1000)"
    )
    parser.add_argument("--step", type=int, default=4, help="characters per streamed piece with --kb")
    args = parser.parse_args()
    if args.kb:
        by_size(args.only, args.kb, args.step)
    else:
        by_doubling(args.only, args.base)


if __name__ == "__main__":
    main()
