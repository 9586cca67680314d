"""Run the whole benchmark suite, print every table and a summary of the targets, optionally save JSON.

    .venv/bin/python bench/run_all.py [--quick] [--scale 3] [--json bench/results.json]
                                           [--only overhead,concurrency,token_count,startup]
                                           [--profile auto|always|never] [--strict]

Each benchmark runs in its own fresh interpreter (no state shared between them: routing, caches, pools),
with --quick / --scale passed on; the real-server URLs default to 127.0.0.1:18080 (ChatML) and :18081
(Mistral template), and a server is started with litellm_llamafile.harness.embedded_server when nothing
answers there.
With --profile auto (the default), a missed stub target also runs bench/profile_adapter.py (profiles and
the what-if measurements of the proposed fixes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

SUITE = ("overhead", "concurrency", "token_count", "startup")
TAKES_REAL_URL = {"overhead", "token_count"}
TAKES_MISTRAL_URL = {"token_count"}


def run_script(
    name: str, args: argparse.Namespace, extra: list[str]
) -> tuple[int, dict[str, Any] | None, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        command = [sys.executable, str(benchlib.BENCH_DIR / f"{name}.py"), "--json", str(out), *extra]
        if args.quick:
            command.append("--quick")
        if args.scale != 1.0:
            command += ["--scale", str(args.scale)]
        if name in TAKES_REAL_URL:
            command += ["--real-url", args.real_url]
        if name in TAKES_MISTRAL_URL:
            command += ["--real-mistral-url", args.real_mistral_url]
        if name == "token_count" and args.private_servers:
            command.append("--private-servers")
        benchlib.say(f"running {' '.join(command[1:])}")
        start = time.perf_counter()
        code = subprocess.call(command, env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        elapsed = time.perf_counter() - start
        payload = json.loads(out.read_text()) if out.exists() else None
    return code, payload, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = benchlib.base_parser(__doc__.split("\n\n")[0])
    benchlib.real_url_args(parser, mistral=True)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SUITE)}")
    parser.add_argument(
        "--profile",
        default="auto",
        choices=["auto", "always", "never"],
        help="run bench/profile_adapter.py: when a stub target is missed (auto), always, or never",
    )
    parser.add_argument(
        "--private-servers",
        action="store_true",
        help="token_count starts its own llama.cpp servers instead of using --real-url / --real-mistral-url",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(SUITE)
    unknown = set(chosen) - set(SUITE)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    results: dict[str, Any] = {}
    failures: list[str] = []
    timings: dict[str, float] = {}
    for name in chosen:
        code, payload, elapsed = run_script(name, args, [])
        timings[name] = elapsed
        if code != 0 or payload is None:
            failures.append(name)
            benchlib.say(f"{name} FAILED (exit {code})")
            continue
        results[name] = payload

    targets = [
        {"benchmark": name, **t} for name, payload in results.items() for t in payload.get("targets", [])
    ]
    missed_stub = [t for t in targets if not t["met"] and t["benchmark"] in ("overhead", "concurrency")]
    missed_count = [t for t in targets if not t["met"] and t["benchmark"] == "token_count"]
    if args.profile == "always" or (args.profile == "auto" and (missed_stub or missed_count)):
        code, payload, elapsed = run_script("profile_adapter", args, ["all"])
        timings["profile_adapter"] = elapsed
        if code != 0 or payload is None:
            failures.append("profile_adapter")
        else:
            results["profile_adapter"] = payload

    print("\n== summary: targets ==")
    if targets:
        print(
            benchlib.table(
                ["benchmark", "target", "value", "goal", "verdict"],
                [
                    [t["benchmark"], t["target"],
                     benchlib.fmt(t["value"]) + (f" {t['unit']}" if t["unit"] else ""),
                     f"{t['op']} {benchlib.fmt(t['threshold'])}", "met" if t["met"] else "MISSED"]
                    for t in targets
                ],
            )
        )  # fmt: skip
    if "startup" in results:
        median = results["startup"]["median_ms"]
        print(
            f"\nstartup: import litellm_llamafile adds {median['litellm_llamafile']:.1f} ms "
            f"to import litellm's {median['litellm']:.0f} ms"
        )
    print("\nwall time per benchmark: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    if failures:
        print(f"FAILED: {', '.join(failures)}")
    machine = benchlib.machine()
    print(
        f"machine: {machine['cpus']} CPUs, load average {machine['loadavg_1_5_15']}, "
        f"python {machine['python']}"
    )
    benchlib.write_json(
        args.json,
        {
            "suite": "litellm-llamafile benchmarks",
            "quick": args.quick,
            "scale": args.scale,
            "machine": machine,
            "targets": targets,
            "failures": failures,
            "wall_s": timings,
            "results": results,
        },
    )
    if failures:
        return 2
    return 1 if args.strict and any(not t["met"] for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
