"""A user turn of many text parts around one image (issue 24, item 4): the time to turn the messages
into the request, at doubling sizes, and the ratio per doubling (2 = linear, 4 = quadratic).

    python bench/image_parts.py [--base 10000] [--package PATH]

`--package PATH` imports litellm_llamafile from another checkout (e.g. a worktree of the commit before
the fix), so the same script prints the figures before and after. Each figure is the best of 3 runs of
`build_chat_request` (the turns made, reshaped for the strict and the open strategy, the payload
built); nothing is sent.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Any

import benchlib  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported)

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def messages(parts: int) -> list[dict[str, Any]]:
    """One user turn: `parts` short text parts with the image in the middle, then a second user turn
    (the strict strategy merges the two)."""
    half = [{"type": "text", "text": f"line {i}"} for i in range(parts // 2)]
    return [
        {"role": "system", "content": "Describe what you see."},
        {"role": "user", "content": [*half, IMAGE, *half]},
        {"role": "user", "content": "and be brief"},
    ]


def best_of(parts: int, template: Any, repeats: int = 3) -> float:
    try:  # the layered package; a checkout from before the folders (--package) had it flat
        from litellm_llamafile.flows.request import build_chat_request
    except ImportError:
        from litellm_llamafile.transformation import build_chat_request  # type: ignore[no-redef]

    best = float("inf")
    for _ in range(repeats):
        batch = messages(parts)
        start = time.perf_counter()
        build_chat_request("smollm2", batch, {}, template)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=10_000, help="text parts at the smallest size")
    parser.add_argument("--package", help="import litellm_llamafile from this checkout instead")
    args = parser.parse_args()
    if args.package:
        sys.path.insert(0, args.package)
    import litellm_llamafile

    try:
        from litellm_llamafile.core.settings import TemplateName
    except ImportError:
        from litellm_llamafile.settings import TemplateName  # type: ignore[no-redef]

    print(f"package: {litellm_llamafile.__file__}")
    sizes = [args.base * 2**k for k in range(4)]
    print(f"{'strategy':10} " + " ".join(f"{f'{s} parts':>13}" for s in sizes) + "   ratios per doubling")
    for template in (TemplateName.MISTRAL, TemplateName.CHATML):
        times = [best_of(n, template) for n in sizes]
        ratios = [b / a for a, b in itertools.pairwise(times)]
        print(
            f"{template.value:10} "
            + " ".join(f"{t * 1000:11.1f}ms" for t in times)
            + "   "
            + " ".join(f"{r:4.2f}" for r in ratios)
        )


if __name__ == "__main__":
    main()
