"""Import cost of `import litellm_llamafile` beyond `import litellm`, in fresh interpreters.

Each run is a new `python -c` process that times `import litellm`, then `import litellm_llamafile`
(and, separately, `litellm_llamafile.register()`), with perf_counter; the table gives medians over the
runs. One extra run under `-X importtime` lists the modules that `import litellm_llamafile` itself
brought in (those not already loaded by `import litellm`), by cumulative import time.

    python bench/startup.py [--quick] [--json out.json] [--runs 9]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

import benchlib

PROBE = """
import json, time
t0 = time.perf_counter()
import litellm
t1 = time.perf_counter()
import litellm_llamafile
t2 = time.perf_counter()
litellm_llamafile.register()
t3 = time.perf_counter()
print(json.dumps({"litellm": t1 - t0, "litellm_llamafile": t2 - t1, "register": t3 - t2}))
"""


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def one_run() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=environment()
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def importtime_breakdown(top: int) -> list[dict[str, Any]]:
    """Modules imported by `import litellm_llamafile` after litellm was loaded, by cumulative time."""
    code = "import litellm\nimport sys\nprint('--- marker ---', file=sys.stderr)\nimport litellm_llamafile\n"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=environment()
    )
    lines = out.stderr.splitlines()
    after = lines[lines.index("--- marker ---") + 1 :] if "--- marker ---" in lines else []
    rows = []
    for line in after:
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        self_us, cumulative_us = self_us.strip(), cumulative_us.strip()
        if not self_us.isdigit():
            continue
        depth = max(0, (len(name) - len(name.lstrip()) - 1) // 2)
        rows.append(
            {
                "module": name.strip(),
                "depth": depth,
                "self_ms": int(self_us) / 1000,
                "cumulative_ms": int(cumulative_us) / 1000,
            }
        )
    rows.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return rows[:top]


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, help="fresh interpreters to time (full 9, quick 3)")
    parser.add_argument("--top", type=int, default=12, help="modules to list from -X importtime")
    args = parser.parse_args(argv)
    runs = benchlib.scaled(args, 9, 3, args.runs)
    one_run()  # warm the OS file cache; not counted
    samples = [one_run() for _ in range(runs)]
    medians = {k: statistics.median(s[k] for s in samples) * 1000 for k in samples[0]}
    spread = {k: (min(s[k] for s in samples) * 1000, max(s[k] for s in samples) * 1000) for k in samples[0]}
    breakdown = importtime_breakdown(args.top)

    print(f"\n== startup: import cost in fresh interpreters (median of {runs}) ==")
    print(
        benchlib.table(
            ["step", "median ms", "min ms", "max ms"],
            [
                ["import litellm", medians["litellm"], *spread["litellm"]],
                ["import litellm_llamafile (after litellm)", medians["litellm_llamafile"],
                 *spread["litellm_llamafile"]],
                ["litellm_llamafile.register()", medians["register"], *spread["register"]],
            ],
        )
    )  # fmt: skip
    share = 100.0 * medians["litellm_llamafile"] / medians["litellm"]
    print(
        f"import litellm_llamafile adds {medians['litellm_llamafile']:.1f} ms "
        f"({share:.1f}% of import litellm)"
    )
    if breakdown:
        print(
            "\nmodules `import litellm_llamafile` loads itself (-X importtime, one run, by cumulative time):"
        )
        print(
            benchlib.table(
                ["module", "cumulative ms", "self ms"],
                [["  " * r["depth"] + r["module"], r["cumulative_ms"], r["self_ms"]] for r in breakdown],
            )
        )
    benchlib.write_json(
        args.json,
        {
            "benchmark": "startup",
            "machine": benchlib.machine(),
            "params": {"runs": runs},
            "median_ms": medians,
            "min_max_ms": spread,
            "samples_s": samples,
            "importtime_top": breakdown,
            "targets": [],
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
