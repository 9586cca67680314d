"""Agent prefill benchmark: does each turn of an agent loop prefill only what the turn added?

An agent ("Tell me about Roman dodecahedrons", tools read_notes / write_file / finish, as in
examples/agent.py) runs for --turns requests through `litellm.completion(model="llamafile/...")` against
real llama.cpp servers, once on the model's own ChatML template and once on the Mistral-style template
(no system role, strict alternation), with tools and without (a plain chat). Per turn it prints the prompt
tokens, the tokens the server took from its cache, the tokens it actually prefilled (timings.prompt_n) and
the prefill time (timings.prompt_ms). Then, on the same ChatML server, the same requests replayed through
LiteLLM's built-in `llamafile/` passthrough (`litellm_llamafile.unregister()`, api_base ending in /v1; it
sends no tool prompt) and with `cache_prompt: false` (re-prefill the whole history every turn); what the
built-in answers on the Mistral template once tool results are in the history; and two agents at once on
one server with several slots, with and without `llamafile_slot_affinity=True`.

    python bench/agent_prefill.py                      # 20 turns (10 per agent when 2 run at once)
    python bench/agent_prefill.py --turns 6 --concurrent-turns 4 --json /tmp/prefill.json   # smoke run

See bench/PREFIX_CACHE.md for how to read the output.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

import httpx
import litellm

import litellm_llamafile
from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from litellm_llamafile.prompt.conversation import Conversation

REPO = Path(__file__).resolve().parent.parent
MODEL = "llamafile/smollm2"
SEED = 7
SEAM_TOKENS = 6  # allowed excess per turn: the generation prompt / closing tag at the end of the last turn


def _load_example_agent() -> Any:
    """examples/agent.py (its task, tools, notes and tool runner), loaded by path: it is not a package."""
    spec = importlib.util.spec_from_file_location("example_agent", REPO / "examples" / "agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


AGENT = _load_example_agent()
TASK: str = AGENT.TASK
SECOND_TASK = "What were Roman dodecahedrons used for?"
TOOLS: list[dict[str, Any]] = AGENT.TOOLS
FINISH_CHOICE = {"type": "function", "function": {"name": "finish"}}
NOT_DONE = "Not finished yet: the user wants more detail. Keep researching and write more notes first."
FOLLOW_UPS = (
    "Tell me more.",
    "Where were they found?",
    "What were they made of?",
    "Which theory do you find most convincing, and why?",
    "Summarize what we know so far in two sentences.",
)


def say(message: str) -> None:
    print(f"[agent_prefill] {message}", file=sys.stderr, flush=True)


# -- one agent run ------------------------------------------------------------------------------------


@dataclass
class Turn:
    turn: int
    action: str
    prompt_tokens: int
    cached_tokens: int
    prefilled: int  # timings.prompt_n: tokens the server actually ran through the model
    prefill_ms: float  # timings.prompt_ms
    added: int | None = None  # prompt_tokens - previous turn's prompt_tokens
    excess: int | None = None  # prefilled - added: the seam (negative when generated tokens matched too)
    id_slot: int | None = None


@dataclass
class Run:
    label: str
    template: str
    turns: list[Turn] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # for replays: messages, tools, choice
    error: str | None = None

    def totals(self, seam_tokens: int = SEAM_TOKENS) -> dict[str, Any]:
        later = [t for t in self.turns if t.excess is not None]
        return {
            "turns": len(self.turns),
            "prompt_tokens": sum(t.prompt_tokens for t in self.turns),
            "cached_tokens": sum(t.cached_tokens for t in self.turns),
            "prefilled": sum(t.prefilled for t in self.turns),
            "prefill_ms": round(sum(t.prefill_ms for t in self.turns), 1),
            "prefilled_from_turn_2": sum(t.prefilled for t in later),
            "prefill_ms_from_turn_2": round(sum(t.prefill_ms for t in later), 1),
            "added_from_turn_2": sum(t.added or 0 for t in later),
            "cached_ratio_from_turn_2": round(
                sum(t.cached_tokens for t in later) / max(1, sum(t.prompt_tokens for t in later)), 3
            ),
            "max_excess": max((t.excess for t in later if t.excess is not None), default=None),
            "target_met": all((t.excess or 0) <= seam_tokens for t in later),
        }


def _timings(response: Any) -> Mapping[str, Any]:
    hidden = getattr(response, "_hidden_params", {}) or {}
    timings = hidden.get("llamafile_timings")  # the adapter
    if timings is None:  # the built-in passthrough keeps the server's extra field on the response
        timings = response.model_dump().get("timings")
    return timings or {}


def _record(run: Run, response: Any, action: str, id_slot: int | None = None) -> Turn:
    usage = response.usage
    details = getattr(usage, "prompt_tokens_details", None)
    timings = _timings(response)
    cached = getattr(details, "cached_tokens", None)
    if cached is None:
        cached = timings.get("cache_n", 0)
    turn = Turn(
        turn=len(run.turns) + 1,
        action=action,
        prompt_tokens=int(usage.prompt_tokens),
        cached_tokens=int(cached or 0),
        prefilled=int(timings.get("prompt_n", usage.prompt_tokens)),
        prefill_ms=float(timings.get("prompt_ms", 0.0)),
        id_slot=id_slot,
    )
    if run.turns:
        turn.added = turn.prompt_tokens - run.turns[-1].prompt_tokens
        turn.excess = turn.prefilled - turn.added
    run.turns.append(turn)
    return turn


def _assistant_message(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    return out


def _slot_for(messages: list[dict[str, Any]], params: dict[str, Any], template: str, slots: int) -> int:
    """The id_slot the adapter sends for these messages (same function, same inputs)."""
    request = build_chat_request(
        "smollm2",
        Conversation.of(messages),
        params,
        RequestProfile(strategy=TemplateName(template), slots=slots),
    )
    return int(request.payload["id_slot"])


def run_agent(
    api_base: str,
    template: str,
    *,
    turns: int,
    tools: bool,
    max_tokens: int,
    task: str = TASK,
    label: str = "",
    options: Mapping[str, Any] | None = None,
    slots_for_affinity: int | None = None,
    on_turn: Callable[[Turn], None] | None = None,
) -> Run:
    """An agent loop through the adapter: with tools, every turn must call a tool (the last one must call
    `finish`); without, a chat whose user keeps asking follow-ups. History grows by appending only."""
    run = Run(label=label or f"adapter/{template}/{'tools' if tools else 'plain'}", template=template)
    workspace = Path(tempfile.mkdtemp(prefix="agent-prefill-"))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": AGENT.SYSTEM},
        {"role": "user", "content": task},
    ]
    for number in range(turns):
        last = number == turns - 1
        params: dict[str, Any] = {}
        if tools:
            params = {"tools": TOOLS, "tool_choice": FINISH_CHOICE if last else "required"}
        run.requests.append({"messages": copy.deepcopy(messages), **params})
        id_slot = _slot_for(messages, params, template, slots_for_affinity) if slots_for_affinity else None
        try:
            response = litellm.completion(
                model=MODEL,
                messages=messages,
                api_base=api_base,
                max_tokens=max_tokens,
                temperature=0,
                seed=SEED,
                timeout=900,
                **params,
                **(options or {}),
            )
        except Exception as error:  # report and stop this run, keep the others
            run.error = f"turn {number + 1}: {type(error).__name__}: {str(error)[:300]}"
            say(f"{run.label}: {run.error}")
            break
        message = response.choices[0].message
        calls = message.tool_calls or []
        if tools and not calls:
            action = "no call (cut off)"
            messages.append({"role": "user", "content": "Answer with one tool call."})  # as examples/agent.py
        elif tools:
            action = "+".join(call.function.name for call in calls)
            messages.append(_assistant_message(message))
            for call in calls:
                try:
                    arguments = json.loads(call.function.arguments or "{}")
                except ValueError:
                    arguments = {}
                result = AGENT.run_tool(call.function.name, arguments, workspace)
                if call.function.name == "finish" and not last:
                    result = NOT_DONE
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        else:
            action = "text"
            messages.append({"role": "assistant", "content": message.content or ""})
            messages.append({"role": "user", "content": FOLLOW_UPS[number % len(FOLLOW_UPS)]})
        turn = _record(run, response, action, id_slot)
        say(f"{run.label}: {turn_line(turn).strip()}")  # progress: a busy machine makes this slow
        if on_turn:
            on_turn(turn)
    return run


def replay(
    source: Run,
    api_base: str,
    label: str,
    *,
    extra: Mapping[str, Any] | None = None,
    stop_on_error: bool = True,
) -> Run:
    """The same requests again (same messages, tools, tool_choice), one token each: only prefill matters."""
    run = Run(label=label, template=source.template)
    for request in source.requests:
        try:
            response = litellm.completion(
                model=MODEL,
                api_base=api_base,
                max_tokens=1,
                temperature=0,
                seed=SEED,
                timeout=900,
                **request,
                **(extra or {}),
            )
            if response is None:
                raise RuntimeError("litellm.completion returned None (no exception raised)")
        except Exception as error:
            run.error = f"turn {len(run.turns) + 1}: {type(error).__name__}: {str(error)[:300]}"
            if stop_on_error:
                break
            continue
        _record(run, response, "replay")
    return run


# -- servers ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(
    template: str, url: str | None, *, slots: int, ctx_per_slot: int, threads: int | None
) -> Iterator[str]:
    """A given server URL, or an embedded llama-server started here and always stopped. Started ones get
    --slot-save-path, which is what enables `POST /slots/N?action=erase` (cold starts between runs)."""
    if url:
        yield url.rstrip("/").removesuffix("/v1")
        return
    with tempfile.TemporaryDirectory(prefix="agent-prefill-slots-") as slot_dir:
        extra = ["--slot-save-path", slot_dir]
        if threads:
            extra += ["--threads", str(threads)]
        embedded = EmbeddedServer(
            template=template, slots=slots, ctx_size=ctx_per_slot * slots, extra_args=tuple(extra)
        )
        try:
            embedded.start(timeout=600)
            yield embedded.base_url
        finally:
            embedded.stop()


def erase_slots(api_base: str) -> bool:
    """Forget what each slot holds, so a run starts cold. False when the server does not allow it (one
    started without --slot-save-path): then turn 1 of a run may find an earlier run's prefix cached."""
    try:
        slots = httpx.get(f"{api_base}/slots", timeout=30).json()
        answers = [httpx.post(f"{api_base}/slots/{slot['id']}?action=erase", timeout=30) for slot in slots]
    except (httpx.HTTPError, ValueError, TypeError, KeyError):
        return False
    return all(answer.status_code == 200 for answer in answers)


# -- printing -----------------------------------------------------------------------------------------


HEADER = (
    f"{'turn':>4}  {'action':<22} {'prompt':>6} {'cached':>6} {'prefill':>7} {'added':>5} {'excess':>6} "
    f"{'ms':>9}"
)


def turn_line(turn: Turn) -> str:
    added = "" if turn.added is None else str(turn.added)
    excess = "" if turn.excess is None else str(turn.excess)
    slot = "" if turn.id_slot is None else f"  slot {turn.id_slot}"
    return (
        f"{turn.turn:>4}  {turn.action[:22]:<22} {turn.prompt_tokens:>6} {turn.cached_tokens:>6} "
        f"{turn.prefilled:>7} {added:>5} {excess:>6} {turn.prefill_ms:>9.1f}{slot}"
    )


def print_run(run: Run, seam_tokens: int) -> None:
    print(f"\n== {run.label} ==")
    print(HEADER)
    for turn in run.turns:
        print(turn_line(turn))
    totals = run.totals(seam_tokens)
    if run.turns:
        verdict = "PASS" if totals["target_met"] else "FAIL"
        print(
            f"   total: prompt {totals['prompt_tokens']}, cached {totals['cached_tokens']}, prefilled "
            f"{totals['prefilled']} tokens in {totals['prefill_ms']:.0f} ms; from turn 2: prefilled "
            f"{totals['prefilled_from_turn_2']} for {totals['added_from_turn_2']} added, cached ratio "
            f"{totals['cached_ratio_from_turn_2']:.3f}; target prefilled <= added + {seam_tokens}: {verdict} "
            f"(max excess {totals['max_excess']})"
        )
    if run.error:
        print(f"   stopped: {run.error}")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


# -- the benchmark ------------------------------------------------------------------------------------


def builtin_mistral_answer(source: Run, api_base: str) -> dict[str, Any]:
    """Replay the Mistral agent's requests through LiteLLM's built-in passthrough until one fails; what did
    LiteLLM answer, and what did the server answer to that same request?"""
    litellm_llamafile.unregister()
    try:
        for number, request in enumerate(source.requests, 1):
            outcome: dict[str, Any] = {"turn": number}
            try:
                response = litellm.completion(
                    model=MODEL,
                    api_base=f"{api_base}/v1",
                    max_tokens=1,
                    temperature=0,
                    timeout=900,
                    **request,
                )
                outcome["litellm"] = "returned None" if response is None else "ok"
            except Exception as error:
                outcome["litellm"] = f"raised {type(error).__name__}: {str(error)[:400]}"
            if outcome["litellm"] == "ok":
                continue
            body = {"model": "smollm2", "max_tokens": 1, **request}
            raw = httpx.post(f"{api_base}/v1/chat/completions", json=body, timeout=900)
            outcome["server_status"] = raw.status_code
            outcome["server_body"] = raw.text[:600]
            outcome["roles"] = [m["role"] for m in request["messages"]]
            return outcome
        return {"turn": None, "litellm": "every request succeeded"}
    finally:
        litellm_llamafile.register()


def concurrent_agents(
    template: str,
    args: argparse.Namespace,
    affinity: bool,
) -> dict[str, Any]:
    """Two agents (two tasks) at once on one fresh server with args.slots slots."""
    results: dict[str, Any] = {"template": template, "slots": args.slots, "slot_affinity": affinity}
    with server(template, None, slots=args.slots, ctx_per_slot=args.ctx, threads=args.server_threads) as url:
        runs: dict[str, Run] = {}

        def agent(name: str, task: str) -> None:
            runs[name] = run_agent(
                url,
                template,
                turns=args.concurrent_turns,
                tools=True,
                max_tokens=args.max_tokens,
                task=task,
                label=f"{name} ({template}, {args.slots} slots, affinity {'on' if affinity else 'off'})",
                options={"llamafile_slot_affinity": True} if affinity else None,
                slots_for_affinity=args.slots if affinity else None,
            )

        started = time.monotonic()
        threads = [
            threading.Thread(target=agent, args=("agent A", TASK)),
            threading.Thread(target=agent, args=("agent B", SECOND_TASK)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        results["wall_s"] = round(time.monotonic() - started, 1)
    results["agents"] = {}
    for name in sorted(runs):
        run = runs[name]
        print_run(run, args.seam_tokens)
        results["agents"][name] = {
            "totals": run.totals(args.seam_tokens),
            "turns": [asdict(t) for t in run.turns],
        }
        if run.error:
            results["agents"][name]["error"] = run.error
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=20, help="requests per agent run (default 20)")
    parser.add_argument(
        "--concurrent-turns", type=int, default=10, help="per agent in the 2-agent case (default 10)"
    )
    parser.add_argument("--slots", type=int, default=2, help="slots of the 2-agent server (default 2)")
    parser.add_argument("--max-tokens", type=int, default=128, help="per tool-agent reply (default 128)")
    parser.add_argument("--plain-max-tokens", type=int, default=48, help="per plain-chat reply (default 48)")
    parser.add_argument("--ctx", type=int, default=8192, help="context per slot of the servers started here")
    parser.add_argument("--seam-tokens", type=int, default=SEAM_TOKENS, help="allowed excess per turn")
    parser.add_argument(
        "--chatml-url", help="use this ChatML server instead of starting one (1 agent at a time!)"
    )
    parser.add_argument("--mistral-url", help="use this Mistral-template server instead of starting one")
    parser.add_argument("--server-threads", type=int, default=None, help="llama-server --threads")
    parser.add_argument(
        "--templates", default="chatml,mistral", help="comma-separated: chatml, mistral (default both)"
    )
    parser.add_argument("--skip-single", action="store_true", help="only the 2-agent runs")
    parser.add_argument("--skip-plain", action="store_true", help="only the tool-using agent")
    parser.add_argument("--skip-nocache", action="store_true", help="no cache_prompt=false replay")
    parser.add_argument("--skip-concurrent", action="store_true", help="no 2-agent runs")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # tables appear as runs finish, also when piped
    litellm_llamafile.register()
    results: dict[str, Any] = {
        "config": {
            **{k: v for k, v in vars(args).items() if k != "json"},
            "model": "SmolLM2-135M-Instruct (Q4_1)",
            "litellm": getattr(litellm, "__version__", None) or _dist_version("litellm"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        },
        "runs": {},
    }
    variants = [True] if args.skip_plain else [True, False]

    def keep(run: Run) -> Run:
        print_run(run, args.seam_tokens)
        entry: dict[str, Any] = {
            "totals": run.totals(args.seam_tokens),
            "turns": [asdict(t) for t in run.turns],
        }
        if run.error:
            entry["error"] = run.error
        results["runs"][run.label] = entry
        return run

    adapter_runs: dict[tuple[str, bool], Run] = {}
    templates = [name.strip() for name in args.templates.split(",") if name.strip()]
    urls = {"chatml": args.chatml_url, "mistral": args.mistral_url}
    for template in [] if args.skip_single else templates:
        url = urls[template]
        with server(template, url, slots=1, ctx_per_slot=args.ctx, threads=args.server_threads) as base:
            say(f"{template} server at {base}")
            if not erase_slots(base):
                say(f"{base} does not allow slot erase: turn 1 of each run may hit an earlier run's prefix")
            for tools in variants:
                erase_slots(base)
                adapter_runs[template, tools] = keep(
                    run_agent(
                        base,
                        template,
                        turns=args.turns,
                        tools=tools,
                        max_tokens=args.max_tokens if tools else args.plain_max_tokens,
                    )
                )
            if template == "mistral":
                erase_slots(base)
                answer = builtin_mistral_answer(adapter_runs[template, True], base)
                results["builtin_mistral_with_tool_results"] = answer
                print("\n== built-in passthrough on the Mistral template, the agent's requests ==")
                for key, value in answer.items():
                    print(f"   {key}: {value}")
                continue
            # The same requests again, one generated token each, so the three differ only in the path:
            # the adapter, LiteLLM's built-in passthrough, the adapter with the server's cache off.
            for tools in variants:
                source = adapter_runs[template, tools]
                kind = "tools" if tools else "plain"
                erase_slots(base)
                keep(replay(source, base, f"replay/chatml/{kind}: adapter"))
                erase_slots(base)
                litellm_llamafile.unregister()
                try:
                    keep(replay(source, f"{base}/v1", f"replay/chatml/{kind}: built-in passthrough"))
                finally:
                    litellm_llamafile.register()
                if not args.skip_nocache:
                    erase_slots(base)
                    keep(
                        replay(
                            source,
                            base,
                            f"replay/chatml/{kind}: adapter, cache_prompt=false",
                            extra={"cache_prompt": False},
                        )
                    )

    print("\n== ChatML, same requests replayed (1 generated token each): total prefill ==")
    for kind in ("tools",) if args.skip_plain else ("tools", "plain"):
        runs = results["runs"]
        adapter = runs.get(f"replay/chatml/{kind}: adapter", {}).get("totals")
        builtin = runs.get(f"replay/chatml/{kind}: built-in passthrough", {}).get("totals")
        nocache = runs.get(f"replay/chatml/{kind}: adapter, cache_prompt=false", {}).get("totals")
        if not adapter or not builtin:
            continue
        comparison = {
            "adapter_prefilled": adapter["prefilled"],
            "adapter_prefill_ms": adapter["prefill_ms"],
            "builtin_prefilled": builtin["prefilled"],
            "builtin_prefill_ms": builtin["prefill_ms"],
            "time_ratio": round(adapter["prefill_ms"] / builtin["prefill_ms"], 3)
            if builtin["prefill_ms"]
            else None,
            "token_ratio": round(adapter["prefilled"] / builtin["prefilled"], 3)
            if builtin["prefilled"]
            else None,
            "time_ratio_from_turn_2": round(
                adapter["prefill_ms_from_turn_2"] / builtin["prefill_ms_from_turn_2"], 3
            )
            if builtin["prefill_ms_from_turn_2"]
            else None,
        }
        print(
            f"   {kind}: adapter {adapter['prefilled']} tok / {adapter['prefill_ms']:.0f} ms; built-in "
            f"{builtin['prefilled']} tok / {builtin['prefill_ms']:.0f} ms; adapter/built-in: time "
            f"{_ratio(adapter['prefill_ms'], builtin['prefill_ms'])} (target <= 1.10x), tokens "
            f"{_ratio(adapter['prefilled'], builtin['prefilled'])}, time from turn 2 "
            f"{_ratio(adapter['prefill_ms_from_turn_2'], builtin['prefill_ms_from_turn_2'])}"
        )
        if nocache:
            comparison["nocache_prefilled"] = nocache["prefilled"]
            comparison["nocache_prefill_ms"] = nocache["prefill_ms"]
            print(
                f"   {kind}: re-prefill the whole history each turn: {nocache['prefilled']} tok / "
                f"{nocache['prefill_ms']:.0f} ms = "
                f"{_ratio(nocache['prefill_ms'], adapter['prefill_ms'])} the adapter's time"
            )
        results.setdefault("comparison", {})[kind] = comparison

    if not args.skip_concurrent:
        results["concurrent"] = []
        for template in templates:
            for affinity in (False, True):
                say(f"2 agents on {template}, {args.slots} slots, slot affinity {affinity}")
                results["concurrent"].append(concurrent_agents(template, args, affinity))
        print("\n== 2 agents at once: cached-token ratio from turn 2 (cached / prompt tokens) ==")
        for entry in results["concurrent"]:
            ratios = ", ".join(
                f"{name} {agent['totals']['cached_ratio_from_turn_2']:.3f} (prefilled "
                f"{agent['totals']['prefilled_from_turn_2']} for {agent['totals']['added_from_turn_2']} "
                "added)"
                for name, agent in entry["agents"].items()
            )
            print(
                f"   {entry['template']:<8} affinity {'on ' if entry['slot_affinity'] else 'off'}: {ratios}; "
                f"wall {entry['wall_s']} s"
            )

    results["config"]["load_average_at_end"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        say(f"results written to {args.json}")
    return 0


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
