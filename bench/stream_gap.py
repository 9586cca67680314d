"""The longest silent gap of a streamed long tool call: a model writes a `write_file` call with a few KB of
code, token by token, in each family's format; the stream assembler gets the tokens as llama-server sends
them, and we count the longest run of tokens after which the client got nothing (no content, reasoning or
tool-call delta). Clients and proxies cut a stream off after an idle timeout, so this is the figure that
matters for a CPU-bound model writing a long call.

    python bench/stream_gap.py [--lines 200] [--rate 8]

`--rate`: tokens per second, to say the gap in seconds too (8 is a 7B model on a laptop CPU).
`--package DIR`: read with the `litellm_llamafile` in DIR instead, to compare with another version
(`git archive COMMIT litellm_llamafile | tar -x -C DIR`); before argument streaming, the whole call was
one silent gap.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent))  # tests.support: the corpus renderers

from tests.support.families.common import TOOLS
from tests.support.families.deepseek import V3_2
from tests.support.families.forced import FORCED
from tests.support.families.gemma import GEMMA4
from tests.support.families.glm import GLM47
from tests.support.families.gpt_oss import GPT_OSS
from tests.support.families.kimi import K2, K3
from tests.support.families.llama import LLAMA3, LLAMA4
from tests.support.families.mistral import MINISTRAL
from tests.support.families.qwen import QWEN3, QWEN3_5

FORMATS = (FORCED, QWEN3, QWEN3_5, GLM47, MINISTRAL, GPT_OSS, GEMMA4, K2, K3, V3_2, LLAMA3, LLAMA4)
_TOKEN = re.compile(r"\s*[^\s]{1,4}|\s+")  # about the size of a BPE token of code


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def longest_gap(assembler_class: Any, pieces: list[str], forced: bool) -> tuple[int, int]:
    """(longest run of tokens that produced nothing for the client, tokens in the reply)."""
    StreamAssembler = assembler_class
    names = [t["function"]["name"] for t in TOOLS]
    streams_calls = hasattr(StreamAssembler, "take_calls")
    tools: Any = TOOLS if streams_calls else frozenset(names)
    kwargs: dict[str, Any] = {"forced": forced} if streams_calls else {}
    assembler = StreamAssembler(tools, parse_tools=True, **kwargs)
    longest = run = 0
    for piece in pieces:
        out = assembler.feed(piece) + assembler.take_reasoning()
        sent = bool(out) or (streams_calls and any(d.arguments or d.name for d in assembler.take_calls("s")))
        run = 0 if sent else run + 1
        longest = max(longest, run)
    return longest, len(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200, help="lines of code in the call's content")
    parser.add_argument("--rate", type=float, default=8.0, help="tokens per second, for the gap in seconds")
    parser.add_argument("--package", help="a directory holding another version's litellm_llamafile")
    args = parser.parse_args()
    if args.package:  # ahead of the installed (editable) package
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", repr(f))]
        sys.path.insert(0, args.package)
    assembler = importlib.import_module("litellm_llamafile.reply.streaming").StreamAssembler
    print(
        f"litellm_llamafile from {Path(importlib.import_module('litellm_llamafile').__file__ or '').parent}"
    )
    code = "".join(f"    result_{i} = compute(values[{i}], scale={i % 7})\n" for i in range(args.lines))
    call = (("write_file", {"path": "/tmp/generated.py", "content": code}),)
    print(
        f"a write_file call with {len(code)} characters of code, {len(tokens(code))} tokens,"
        f" at {args.rate} tok/s"
    )
    print(f"{'format':22} {'tokens':>7} {'longest silent gap':>20}")
    for fmt in FORMATS:
        # Llama 3.x and the forced reply are the call alone; the others open with a sentence.
        alone = fmt.family in ("forced_json", "llama3")
        text = fmt.render(call) if alone else "I will write the file.\n" + fmt.render(call)
        gap, total = longest_gap(assembler, tokens(text), forced=fmt.family == "forced_json")
        print(f"{fmt.family:22} {total:7d} {gap:9d} tokens {gap / args.rate:7.1f} s")
    print(
        "gap: the most tokens in a row after which the client got nothing (content, reasoning, call deltas)"
    )


if __name__ == "__main__":
    main()
