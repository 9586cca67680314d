"""`litellm-llamafile demo`, the main job: what the adapter does, turn by turn, beside LiteLLM's built-in.

On a real llama.cpp server per template (SmolLM2-135M under its own ChatML template, and under a
Mistral-style one: no system role, strict alternation), the agent of `demo_agent.py` works on "Tell me
about Roman dodecahedrons" through the real LiteLLM proxy (`litellm --config`, the yaml of
`litellm-llamafile config`) with the official OpenAI SDK. For each turn it prints what the adapter
reports in the proxy's response headers (`x-llamafile-*`: role strategy, how the tools were offered,
the constraint), the call and whether it is valid for its tool's schema, the proxy's exact count
before the request against the server's `usage.prompt_tokens` after, and the prompt tokens the server
took from its cache. Then the same first turns through LiteLLM's built-in `llamafile` provider on the
same server, and a summary.

    litellm-llamafile demo                         both templates, embedded servers (built once)
    LLAMAFILE_API_BASE=http://127.0.0.1:8080 litellm-llamafile demo      your own server instead
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import litellm
from openai import OpenAI

from ..core.errors import server_message
from ..flows.adapter_report import HEADER_PREFIX
from ..harness.embedded_server import EmbeddedServer
from ..prompt.tools import tool_instructions
from .demo_agent import TASK, TOOLS, Send, run_agent
from .proxy_config import render_config, running_proxy

MAX_TOKENS = 160
TEMPERATURE = 0.3
# The agent's plan: read the notes, write them up, then any tool, and `finish` last (the system prompt asks
# for the same). SmolLM2-135M, free to choose, calls `finish` at once: the plan makes the turns worth
# telling (tool results, a growing history, the prompt cache).
PLAN = ("read_notes", "write_file")
QUALITY_NOTE = (
    "The answer is SmolLM2-135M's own prose (a 135M model, chosen because it runs anywhere in seconds): "
    "judge the adapter by the figures, not by the writing."
)
SCHEMAS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}


@dataclass
class Turn:
    """One request of the agent and what came back."""

    number: int
    messages: list[dict[str, Any]] = field(default_factory=list)  # the request's messages
    tool_choice: Any = "required"
    counted: int | None = None  # the count before the request
    used: int | None = None  # the server's usage.prompt_tokens after
    cached: int | None = None
    report: dict[str, str] = field(default_factory=dict)  # what the adapter said it did
    call: str = ""  # name(arguments) of the first call
    invalid: str | None = None  # why the call is not valid for its tool's schema
    content: str = ""
    error: str = ""
    short_error: str = ""  # the few words the summary shows
    notes: dict[str, str] = field(default_factory=dict)  # more rows to show (the built-in's tools)
    seconds: float = 0.0


@dataclass
class Story:
    template: str
    path: str  # "adapter" or "built-in"
    turns: list[Turn] = field(default_factory=list)
    answer: str = ""


def check_call(name: str, arguments: str) -> str | None:
    """None when the call names an offered tool with arguments valid for its schema, else why not."""
    schema = SCHEMAS.get(name)
    if schema is None:
        return f"{name!r} is not an offered tool"
    try:
        jsonschema.validate(json.loads(arguments), schema)
    except (ValueError, jsonschema.ValidationError) as error:
        return str(getattr(error, "message", error))[:120]
    return None


def record_reply(turn: Turn, response: Any) -> None:
    message = response.choices[0].message
    calls = message.tool_calls or []
    if calls:
        turn.call = f"{calls[0].function.name}({calls[0].function.arguments})"
        turn.invalid = check_call(calls[0].function.name, calls[0].function.arguments)
    turn.content = (message.content or "").strip()
    usage = getattr(response, "usage", None)
    turn.used = getattr(usage, "prompt_tokens", None)
    details = getattr(usage, "prompt_tokens_details", None)
    turn.cached = getattr(details, "cached_tokens", None)


def adapter_send(client: Any, proxy_url: str, master_key: str, story: Story) -> Send:
    """Requests through the proxy with the OpenAI SDK; the proxy's exact count first."""

    def send(model: str, messages: list[dict[str, Any]], tool_choice: Any) -> Any:
        turn = Turn(len(story.turns) + 1, messages=list(messages), tool_choice=tool_choice)
        story.turns.append(turn)
        counted = httpx.post(
            f"{proxy_url}/utils/token_counter",
            params={"call_endpoint": "true"},
            json={"model": model, "messages": messages, "tools": TOOLS},
            headers={"Authorization": f"Bearer {master_key}"},
            timeout=60,
        )
        turn.counted = counted.json().get("total_tokens") if counted.status_code == 200 else None
        started = time.monotonic()
        raw = client.chat.completions.with_raw_response.create(
            model=model,
            messages=messages,
            tools=TOOLS,
            tool_choice=tool_choice,
            max_tokens=MAX_TOKENS,
            temperature=TEMPERATURE,
        )
        turn.seconds = time.monotonic() - started
        turn.report = adapter_headers(raw.headers)
        response = raw.parse()
        record_reply(turn, response)
        show_turn(story, turn)
        return response

    return send


def adapter_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The adapter's report from the proxy's response headers (LiteLLM may prefix them)."""
    found = {}
    for name, value in headers.items():
        at = name.lower().find(HEADER_PREFIX)
        if at >= 0:
            found[name.lower()[at + len(HEADER_PREFIX) :]] = value
    return found


def builtin_replay(api_base: str, adapter: Story) -> Story:
    """The adapter's requests, turn by turn the same messages, tools and tool_choice, sent through LiteLLM's
    built-in `llamafile` provider (this process never calls register()); its count is LiteLLM's own
    `token_counter`. Stops at the first turn the built-in cannot answer."""
    story = Story(adapter.template, "built-in")
    tools: Any = TOOLS
    for sent in adapter.turns:
        turn = Turn(sent.number, messages=sent.messages, tool_choice=sent.tool_choice)
        if sent.number == 1:
            turn.notes["tools"] = tools_seen(api_base, sent.messages)
        story.turns.append(turn)
        turn.counted = litellm.token_counter(model="llamafile/smollm2", messages=sent.messages, tools=tools)
        started = time.monotonic()
        try:
            response = litellm.completion(
                model="llamafile/smollm2",
                api_base=f"{api_base}/v1",
                messages=sent.messages,
                tools=TOOLS,
                tool_choice=sent.tool_choice,
                max_tokens=MAX_TOKENS,
                temperature=TEMPERATURE,
            )
        except Exception as error:  # the demo shows whatever the built-in does
            turn.error = f"{type(error).__name__}: {' '.join(str(error).split())[:240]}"
            turn.short_error = type(error).__name__
        else:
            if response is None:
                answer = server_answer(api_base, sent)
                turn.error = f"litellm.completion returned None; the server had answered {answer}"
                turn.short_error = f"{answer.split(':')[0]}, None returned"
            else:
                record_reply(turn, response)
        turn.seconds = time.monotonic() - started
        show_turn(story, turn)
        if turn.error:
            break
    return story


def server_answer(api_base: str, turn: Turn) -> str:
    """What llama-server answers to the turn's request sent as is (the built-in is a passthrough): for the
    turn where LiteLLM's built-in returned None instead of raising."""
    body = {"messages": turn.messages, "tools": TOOLS, "tool_choice": turn.tool_choice, "max_tokens": 1}
    answer = httpx.post(f"{api_base}/v1/chat/completions", json=body, timeout=120)
    if answer.status_code == 200:
        return "HTTP 200"
    message = " ".join(server_message(answer.text).split())
    # A template's own raise_exception ends the message; llama-server's wrapping comes first.
    reason = message.rsplit("Exception:", 1)[-1].strip() if "Exception:" in message else message
    return f"HTTP {answer.status_code}: {reason[:200]}"


def tools_seen(api_base: str, messages: list[dict[str, Any]]) -> str:
    """Whether the server's chat template puts `tools` into the prompt at all: the prompt rendered with
    and without them (POST /apply-template), as the built-in passes them through."""

    def prompt(**extra: Any) -> str:
        answer = httpx.post(f"{api_base}/apply-template", json={"messages": messages, **extra}, timeout=60)
        return str(answer.json().get("prompt")) if answer.status_code == 200 else ""

    if prompt(tools=TOOLS) == prompt():
        return "passed through as `tools`: the server's chat template drops them, the model never sees them"
    return "passed through as `tools`: the server's chat template renders them"


# -- telling it ------------------------------------------------------------------------------------------


def _tokens(turn: Turn, counter: str) -> str:
    if turn.counted is None or turn.used is None:
        return f"{counter} {turn.counted}, the server used {turn.used}"
    verdict = "exact" if turn.counted == turn.used else f"off by {turn.counted - turn.used:+d}"
    cached = f"; {turn.cached} of them from the server's cache" if turn.cached is not None else ""
    return f"{counter} {turn.counted} before, the server used {turn.used} ({verdict}){cached}"


def _call(turn: Turn) -> str:
    if not turn.call:
        reply = turn.content[:100].replace("\n", " ")
        return f"no call; the reply was text: {reply!r}" if reply else "no call, no text"
    verdict = "valid for its schema" if turn.invalid is None else f"NOT valid: {turn.invalid}"
    return f"{turn.call[:140]}  ({verdict})"


def _unchanged(key: str, turn: Turn, before: Turn | None) -> bool:
    return before is not None and before.report.get(key) == turn.report.get(key)


def _roles(turn: Turn, before: Turn | None) -> str:
    """The role strategy in full on the first turn, then only how many messages became how many turns."""
    text = turn.report["roles"]
    if before is not None and before.report.get("roles", "").split(":")[0] == text.split(":")[0]:
        return "as before:" + text.split(":", 1)[1]
    return text


def turn_lines(turn: Turn, counter: str, before: Turn | None = None) -> list[str]:
    head = f"  turn {turn.number}"
    if turn.error:
        return [f"{head}  {turn.error}"]
    rows: list[tuple[str, str]] = []
    if "roles" in turn.report:
        rows.append(("roles", _roles(turn, before)))
    rows += [
        (k, turn.report[k])
        for k in ("tools", "constraint")
        if k in turn.report and not _unchanged(k, turn, before)
    ]
    rows += list(turn.notes.items())
    rows += [("call", _call(turn)), ("tokens", _tokens(turn, counter))]
    pad = " " * len(head)
    lines = [f"{head if i == 0 else pad}  {key:<10} {text}" for i, (key, text) in enumerate(rows)]
    lines[-1] += f"  [{turn.seconds:.1f} s]"
    return lines


TITLES = {
    "adapter": "{}: through the adapter (the LiteLLM proxy with litellm-llamafile, the OpenAI SDK)",
    "built-in": "{}: the same requests through LiteLLM's built-in `llamafile` provider, same server",
}
COUNTERS = {"adapter": "proxy /utils/token_counter said", "built-in": "litellm.token_counter said"}


def show_turn(story: Story, turn: Turn) -> None:
    """Print one turn as it ends (a turn of a 135M model on 2 cores takes seconds): the title first."""
    if turn is story.turns[0]:
        print("\n" + TITLES[story.path].format(story.template), flush=True)
    index = story.turns.index(turn)
    before = story.turns[index - 1] if index else None
    print("\n".join(turn_lines(turn, COUNTERS[story.path], before)), flush=True)


def summary_row(story: Story) -> list[str]:
    turns = story.turns
    answered = [t for t in turns if not t.error]
    valid = sum(1 for t in answered if t.call and t.invalid is None)
    exact = sum(1 for t in answered if t.counted is not None and t.counted == t.used)
    later = [t for t in answered[1:] if t.used]
    cached = sum(t.cached or 0 for t in later)
    share = f"{cached / sum(t.used or 0 for t in later):.0%}" if later else "-"
    failed = next((t for t in turns if t.error), None)
    stop = f"turn {failed.number}: {failed.short_error}" if failed else ("finish" if story.answer else "-")
    return [
        story.template,
        story.path,
        f"{len(answered)}/{len(turns)}",
        f"{valid}/{len(turns)}",
        f"{exact}/{len(turns)}",
        share,
        stop,
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    rule = "  ".join("-" * width for width in widths)
    head = "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))
    return "\n".join([head, rule, *lines])


SUMMARY_HEADER = ["template", "path", "answered", "valid calls", "exact counts", "cached, turns 2+", "ended"]


def summary(stories: Sequence[Story]) -> str:
    return "\n".join(
        ["", "Summary", table(SUMMARY_HEADER, [summary_row(s) for s in stories]), "", QUALITY_NOTE]
    )


# -- the run ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(templates: Sequence[str]) -> Iterator[dict[str, str]]:
    """One real server per template (LLAMAFILE_API_BASE: the user's own server, nothing started)."""
    external = os.environ.get("LLAMAFILE_API_BASE")
    if external:
        print(f"Using your server at {external}")
        yield {"your server": external.rstrip("/").removesuffix("/v1")}
        return
    with contextlib.ExitStack() as stack:
        urls = {}
        for template in templates:
            server = stack.enter_context(EmbeddedServer(template=template, ctx_size=8192, slots=2))
            urls[template] = server.base_url
        yield urls


@contextlib.contextmanager
def proxy(urls: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """The real LiteLLM proxy with one model name per server, from `litellm-llamafile config`'s yaml."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "llamafile.yaml"
        config.write_text(render_config([(_model_name(t), url) for t, url in urls.items()]))
        with running_proxy(config, log=Path(folder) / "proxy.log") as (url, key):
            print(f"LiteLLM proxy (litellm --config {config.name}) at {url}")
            yield url, key


def _model_name(template: str) -> str:
    return template.replace(" ", "-")


def run_template(template: str, url: str, proxy_url: str, key: str, steps: int) -> list[Story]:
    model = _model_name(template)
    adapter = Story(template, "adapter")
    with tempfile.TemporaryDirectory() as workspace:
        client = OpenAI(base_url=f"{proxy_url}/v1", api_key=key)
        run = run_agent(
            adapter_send(client, proxy_url, key, adapter),
            worker_model=model,
            planner_model=model,
            max_steps=steps,
            workspace=Path(workspace),
            plan=PLAN,
        )
    adapter.answer = run.answer
    print(f"  answer     {adapter.answer[:300] or '(none)'}", flush=True)
    return [adapter, builtin_replay(url, adapter)]


def intro() -> str:
    signatures = tool_instructions(TOOLS).splitlines()
    return "\n".join(
        [
            f"Task: {TASK}",
            "The agent's every turn must be a tool call: read_notes, then write_file (named tool_choice),",
            "then any tool (tool_choice=required), and finish last. The adapter offers the tools to the",
            "model in the system text, as signatures:",
            *(f"    {line}" for line in signatures[1:-1]),
        ]
    )


def main(argv: Sequence[str] | None = None, prog: str = "litellm-llamafile demo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--templates", default="chatml,mistral", help="comma-separated: chatml, mistral")
    parser.add_argument("--steps", type=int, default=4, help="agent turns through the adapter (default 4)")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    templates = [t.strip() for t in args.templates.split(",") if t.strip()]
    print(intro(), flush=True)
    stories: list[Story] = []
    with servers(templates) as urls, proxy(urls) as (proxy_url, key):
        for template, url in urls.items():
            stories += run_template(template, url, proxy_url, key, args.steps)
    print(summary(stories))
    return 0 if all(s.answer for s in stories if s.path == "adapter") else 1
