"""What the four framework scripts share: the task, its one tool, and an observer of every LiteLLM call.

The observer is a LiteLLM callback (`litellm.callbacks`), LiteLLM's public hook, so the frameworks run
unmodified; it records what each turn sent (tools, tool results) and what came back (tool calls), and
`main()` prints one JSON line with the five answers the table needs:

    sent_tools       the framework put `tools` in a request
    call_well_formed a reply carried an OpenAI tool_call to count_faces whose arguments are a JSON object
                     matching the tool's schema ({"solid": <string>}, nothing else)
    tool_ran         the framework ran the tool (count_faces records every run)
    result_accepted  a later request carried the tool's result (a `tool` message answering the call's id,
                     or, for a text-protocol framework, the result in a user turn) and the server answered it
    answer           the framework's final answer (SmolLM2-135M's; its quality is not judged)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.integrations.custom_logger import CustomLogger

import litellm_llamafile

TASK = "How many faces does a Roman dodecahedron have? Use the count_faces tool, then answer."
MODEL = "llamafile/smollm2"
FACES = {"tetrahedron": 4, "cube": 6, "octahedron": 8, "dodecahedron": 12, "icosahedron": 20}
# Per call, through each framework's own setting: on a loaded machine SmolLM2 can need more than the
# adapter's default 600 s for one turn.
TIMEOUT = float(os.environ.get("FW_TIMEOUT", "1800"))
CALLS: list[str] = []  # every run of the tool, with its argument
RESULTS: list[str] = []  # and what it returned


def count_faces(solid: str) -> str:
    """Number of faces of a regular solid.

    Args:
        solid: The solid's name, such as "dodecahedron".
    """
    CALLS.append(solid)
    RESULTS.append(str(next((n for name, n in FACES.items() if name in solid.lower()), "unknown")))
    return RESULTS[-1]


def _text(content: Any) -> str:
    """A message's text, whether a string or a list of parts (smolagents sends parts)."""
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content
        )
    return "" if content is None else str(content)


def _message_dict(message: Any) -> dict[str, Any]:
    if isinstance(message, dict):
        return message
    dump = getattr(message, "model_dump", None)
    return dump() if callable(dump) else {"content": str(message)}


class Observer(CustomLogger):  # type: ignore[misc]
    """One record per LiteLLM call (keyed by its call id: async calls can reach both hooks)."""

    def __init__(self) -> None:
        super().__init__()
        self.turns: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def _record(self, kwargs: dict[str, Any], response: Any, error: str | None) -> None:
        call_id = str(kwargs.get("litellm_call_id") or id(kwargs))
        params = kwargs.get("optional_params") or {}
        tools = params.get("tools") or kwargs.get("tools") or []
        messages = [_message_dict(m) for m in kwargs.get("messages") or []]
        reply_calls: list[dict[str, str]] = []
        content = None
        choices = getattr(response, "choices", None) or []
        if choices:
            message = choices[0].message
            content = message.content
            for call in message.tool_calls or []:
                reply_calls.append(
                    {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
                )
        with self.lock:
            if call_id in self.turns:
                return
            self.turns[call_id] = {
                "at": time.monotonic(),
                "tools": [t.get("function", {}).get("name") for t in tools if isinstance(t, dict)],
                "tool_choice": params.get("tool_choice", kwargs.get("tool_choice")),
                "stream": bool(kwargs.get("stream")),
                "messages": messages,
                "reply_calls": reply_calls,
                "reply_text": (content or "")[:200] if isinstance(content, str) else None,
                "error": error,
            }
        # progress on stderr: a run on a loaded machine can take many minutes
        print(
            f"[observe] turn {len(self.turns)}: tools={self.turns[call_id]['tools']} "
            f"calls={reply_calls} error={error}",
            file=sys.stderr,
            flush=True,
        )

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, response_obj, None)

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, response_obj, None)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._record(kwargs, None, str(kwargs.get("exception") or "failed")[:300])

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._record(kwargs, None, str(kwargs.get("exception") or "failed")[:300])


def well_formed(call: dict[str, str]) -> bool:
    if call["name"] != "count_faces":
        return False
    try:
        arguments = json.loads(call["arguments"])
    except (TypeError, ValueError):
        return False
    return isinstance(arguments, dict) and set(arguments) == {"solid"} and isinstance(arguments["solid"], str)


def summarize(turns: list[dict[str, Any]]) -> dict[str, Any]:
    calls = [call for turn in turns for call in turn["reply_calls"]]
    call_ids = {call["id"] for call in calls}
    accepted: str | bool = False
    for turn in turns:
        if turn["error"]:
            continue
        for message in turn["messages"]:
            if message.get("role") == "tool" and message.get("tool_call_id") in call_ids:
                accepted = "tool message"
        # A text-protocol framework (smolagents, ReAct-style prompts) hands the result back in a turn's
        # text, after "Observation:".
        if not accepted and any(
            message.get("role") in ("user", "assistant")
            and any(
                re.search(rf"Observation:\s*{re.escape(result)}", _text(message.get("content")))
                for result in RESULTS
            )
            for message in turn["messages"]
        ):
            accepted = "as text"
    return {
        "turns": len(turns),
        "sent_tools": any(turn["tools"] for turn in turns),
        "call_well_formed": any(well_formed(call) for call in calls),
        "tool_ran": bool(CALLS),
        "result_accepted": accepted,
        "per_turn": [
            {
                "tools": turn["tools"],
                "tool_choice": turn["tool_choice"],
                "stream": turn["stream"],
                "roles": [m.get("role") for m in turn["messages"]],
                "last_message": _text(turn["messages"][-1].get("content"))[-300:]
                if turn["messages"]
                else None,
                "reply_calls": turn["reply_calls"],
                "reply_text": turn["reply_text"],
                "error": turn["error"],
            }
            for turn in turns
        ],
    }


def main(framework: str, run: Callable[[str, str], str], variants: tuple[str, ...] = ("default",)) -> int:
    parser = argparse.ArgumentParser(description=f"{framework}, unmodified, on one llamafile/ server")
    parser.add_argument("api_base", help="the llama-server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--variant", default=variants[0], choices=variants)
    parser.add_argument("--template", default="", help="only recorded in the output line")
    args = parser.parse_args()
    # api_bases: for the calls a framework makes without api_base=, such as litellm.token_counter.
    litellm_llamafile.register(api_bases={MODEL: args.api_base})
    observer = Observer()
    # Also in LiteLLM's per-event lists: CrewAI's LLM sets `litellm.callbacks` to its own list (dropping
    # ours) but leaves these alone.
    litellm.callbacks = [*litellm.callbacks, observer]
    for hooks in (
        "success_callback",
        "failure_callback",
        "_async_success_callback",
        "_async_failure_callback",
    ):
        getattr(litellm, hooks).append(observer)
    result: dict[str, Any] = {
        "framework": framework,
        "template": args.template,
        "variant": args.variant,
        "supports_function_calling": litellm.supports_function_calling(model=MODEL),
    }
    started = time.monotonic()
    try:
        result["answer"] = str(run(args.api_base, args.variant))[:300]
    except Exception as error:  # the line records what failed
        result["error"] = f"{type(error).__name__}: {error}"[:600]
        result["traceback_tail"] = traceback.format_exc().splitlines()[-6:]
    time.sleep(0.5)  # LiteLLM runs success callbacks on a thread; let the last one land
    turns = sorted(observer.turns.values(), key=lambda turn: turn["at"])
    result.update(summarize(turns), tool_calls=CALLS, seconds=round(time.monotonic() - started, 1))
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # CrewAI leaves non-daemon threads behind, and the process would outlive its answer.
    os._exit(0)


if __name__ == "__main__":
    sys.exit("run one of the framework scripts beside this file")
