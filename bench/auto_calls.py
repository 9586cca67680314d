"""tool_choice "auto" on a model trained to call tools: which way of offering tools works best?

Qwen2.5-Coder 0.5B Instruct (embedded_server model "qwen", its own tool-aware template) on llama-server
`--jinja` runs the agent tasks of bench/auto_tasks.py (one tool, a choice among nine, no tool needed,
parallel calls, a tool result to answer, multi-turn) through `litellm.completion`, in each configuration:

    generic             the adapter's default: tools as signatures in the system text, the reply parsed
    generic+constrain   the same, with llamafile_constrain_auto=True (prose or one valid call)
    native              llamafile_tool_prompt="native": the template's own tools rendering
    native+constrain    both
    built-in            LiteLLM's own llamafile provider (tools passed to llama-server, its parser)

and reports, per configuration:

    call rate       tasks that need a call and got one
    right tools     ... whose calls name exactly the expected tools (parallel: all of them)
    parallel        parallel tasks answered with every expected call
    valid           calls whose arguments the tool's schema accepts (of all calls made)
    invalid out     replies handed to the caller holding a call the schema rejects
    no call         tasks that need no call and got none
    prompt tokens   mean usage.prompt_tokens
    s/request       mean wall time

    flock /tmp/llamafile-measure.lock .venv/bin/python bench/auto_calls.py [--url URL] [--json out.json]
    .venv/bin/python bench/auto_calls.py --configs native --json native.json   # one configuration
    .venv/bin/python bench/auto_calls.py --merge generic.json native.json ...   # one table of several runs

Without --url a one-slot Qwen server is started (and stopped). Greedy sampling, one pass. On a busy
2-core machine run the configurations at once, each with its own server (they then share the machine
alike, so their times compare).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import jsonschema
import litellm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auto_tasks import TOOLS, Task, tasks
from benchlib import machine, say

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from litellm_llamafile.server.servers import SERVERS

MAX_TOKENS = 128
CONFIGS: dict[str, dict[str, Any] | None] = {
    "generic": {},
    "generic+constrain": {"llamafile_constrain_auto": True},
    "native": {"llamafile_tool_prompt": "native"},
    "native+constrain": {"llamafile_tool_prompt": "native", "llamafile_constrain_auto": True},
    "built-in": None,  # LiteLLM's built-in provider
}


@dataclass
class Outcome:
    task: str
    kind: str
    config: str
    calls: list[tuple[str, str]] = field(default_factory=list)
    content: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    counted: int | None = None
    seconds: float = 0.0
    error: str = ""


def schema_errors(name: str, arguments: str) -> str:
    """'' when the tool exists and its schema accepts the arguments, else why not."""
    tool = TOOLS.get(name)
    if tool is None:
        return f"no tool {name!r}"
    try:
        value = json.loads(arguments or "{}")
        jsonschema.validate(value, tool["function"]["parameters"])
    except ValueError as error:
        return f"arguments not JSON: {error}"
    except jsonschema.ValidationError as error:
        return error.message
    return ""


def ask(url: str, task: Task, config: str) -> Outcome:
    options = CONFIGS[config]
    outcome = Outcome(task.name, task.kind, config)
    kwargs: dict[str, Any] = {
        "messages": task.messages,
        "tools": task.tool_specs(),
        "tool_choice": "auto",
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "timeout": 1800,
    }
    started = time.perf_counter()
    try:
        if options is None:
            response = litellm.completion(model="llamafile/qwen", api_base=f"{url}/v1", **kwargs)
        else:
            response = litellm.completion(model="llamafile/qwen", api_base=url, **options, **kwargs)
    except Exception as error:  # every failure is a row
        outcome.error = f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
        return outcome
    outcome.seconds = time.perf_counter() - started
    message = response.choices[0].message
    outcome.calls = [(c.function.name, c.function.arguments or "") for c in (message.tool_calls or [])]
    outcome.content = (message.content or "")[:200]
    outcome.prompt_tokens = getattr(response.usage, "prompt_tokens", None)
    outcome.completion_tokens = getattr(response.usage, "completion_tokens", None)
    if options is not None:
        outcome.counted = litellm_llamafile.count_tokens(
            task.messages,
            model="qwen",
            tools=task.tool_specs(),
            tool_choice="auto",
            api_base=url,
            options=options,
        )
    return outcome


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
    return "\n".join(lines)


def right_tools(task: Task, outcome: Outcome) -> bool:
    return sorted(name for name, _ in outcome.calls) == sorted(task.expected)


def summary(config: str, by_task: dict[str, Task], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    needing = [o for o in outcomes if by_task[o.task].needs_call]
    plain = [o for o in outcomes if not by_task[o.task].needs_call]
    parallel = [o for o in outcomes if o.kind == "parallel"]
    calls = [call for o in outcomes for call in o.calls]
    invalid_out = [o for o in outcomes if any(schema_errors(*c) for c in o.calls)]
    counted = [o for o in outcomes if o.counted is not None]

    def share(part: Sequence[Outcome], whole: Sequence[Outcome]) -> str:
        return f"{len(part)}/{len(whole)}"

    return {
        "config": config,
        "call rate": share([o for o in needing if o.calls], needing),
        "right tools": share([o for o in needing if right_tools(by_task[o.task], o)], needing),
        "parallel": share([o for o in parallel if right_tools(by_task[o.task], o)], parallel),
        "valid": f"{sum(1 for c in calls if not schema_errors(*c))}/{len(calls)}",
        "invalid out": len(invalid_out),
        "no call": share([o for o in plain if not o.calls and not o.error], plain),
        "errors": sum(1 for o in outcomes if o.error),
        "count exact": share([o for o in counted if o.counted == o.prompt_tokens], counted)
        if counted
        else "—",
        "prompt tokens": round(statistics.mean(o.prompt_tokens or 0 for o in outcomes)),
        "reply tokens": round(statistics.mean(o.completion_tokens or 0 for o in outcomes)),
        "s/request": round(statistics.mean(o.seconds for o in outcomes if not o.error) if outcomes else 0, 2),
    }


def run(
    url: str, configs: Sequence[str], chosen: Sequence[Task], progress: Callable[[Outcome], None]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for config in configs:
        SERVERS.forget()
        if CONFIGS[config] is None:
            litellm_llamafile.unregister()
        else:
            litellm_llamafile.register()
        for task in chosen:
            outcome = ask(url, task, config)
            outcomes.append(outcome)
            progress(outcome)
    litellm_llamafile.register()
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", help="a running llama-server --jinja with Qwen2.5-Coder (else one is started)"
    )
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--only", nargs="*", default=[], help="tasks whose name contains one of these")
    parser.add_argument("--json", help="also write every outcome here")
    parser.add_argument(
        "--merge", nargs="+", help="print one table from the --json files of runs, run nothing"
    )
    args = parser.parse_args(argv)
    if args.merge:
        print(markdown([row for path in args.merge for row in json.loads(Path(path).read_text())["rows"]]))
        return 0
    litellm.suppress_debug_info = True
    chosen = [t for t in tasks() if not args.only or any(s in t.name for s in args.only)]
    load = os.getloadavg()[0]
    started = time.monotonic()
    server = None if args.url else EmbeddedServer(model="qwen", ctx_size=4096, slots=1).start()
    url = args.url or (server.base_url if server else "")

    done: list[Outcome] = []

    def progress(o: Outcome) -> None:
        calls = ", ".join(f"{n}({a[:50]})" for n, a in o.calls) or f"text {o.content[:50]!r}"
        say(f"{o.config:18} {o.task:15} {o.seconds:5.1f}s {o.error or calls}")
        done.append(o)
        if args.json:  # a run cut short keeps what it measured
            Path(args.json).with_suffix(".partial.json").write_text(json.dumps([asdict(x) for x in done]))

    try:
        outcomes = run(url, args.configs, chosen, progress)
    finally:
        if server is not None:
            server.stop()
    by_task = {t.name: t for t in chosen}
    rows = [summary(c, by_task, [o for o in outcomes if o.config == c]) for c in args.configs]
    where = machine()
    print(
        f"Qwen2.5-Coder 0.5B, {len(chosen)} tasks, tool_choice auto, greedy; {where['when']}, "
        f"{where['cpus']} cores; load {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
        f"{time.monotonic() - started:.0f} s"
    )
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "outcomes": [asdict(o) for o in outcomes]}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
