"""The main job's agent: an AutoGPT-style loop on the task "Tell me about Roman dodecahedrons", with local,
offline tools (notes to read, a workspace to write into, `finish`). Every step must be a tool call
(`tool_choice="required"`); the last step names `finish`.

The loop is written against one `Send` function (model, messages, tool_choice -> an OpenAI-shaped
completion), so the same agent runs through the proxy with the OpenAI SDK and through LiteLLM's
built-in provider (`demo.py` shows both; `examples/agent.py` is its command line).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASK = "Tell me about Roman dodecahedrons"

NOTES = {
    "roman dodecahedron": (
        "Roman dodecahedrons are small hollow bronze or stone objects with twelve flat pentagonal faces, "
        "each with a circular hole of a different size, and knobs at the corners. About 130 are known, "
        "found mostly in Gaul, Germania and Britain, dated to the 2nd-4th centuries AD."
    ),
    "purpose": (
        "No Roman text mentions them, so their purpose is unknown. Suggestions include surveying or "
        "range-finding tools, calendars for sowing grain, knitting gauges, candle holders, dice and "
        "religious or magical objects."
    ),
}

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "read_notes",
            "description": "Read the research notes on a topic. Topics: 'roman dodecahedron', 'purpose'.",
            "parameters": {
                "type": "object",
                "properties": {"topic": {"type": "string", "enum": sorted(NOTES)}},
                "required": ["topic"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write text to a file in the agent's workspace.",
            "parameters": {
                "type": "object",
                "properties": {"filename": {"type": "string"}, "text": {"type": "string"}},
                "required": ["filename", "text"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": "End the task and give the final answer to the user.",
            "parameters": {
                "type": "object",
                "properties": {"answer": {"type": "string", "description": "The final answer"}},
                "required": ["answer"],
            },
        },
    },
]

SYSTEM = (
    "You are an autonomous research agent. Work step by step: read the notes, write a short summary "
    "to a file, then finish with a one-paragraph answer for the user."
)
RETRY = "Answer with one tool call."

# (model, messages so far, tool_choice) -> an OpenAI-shaped chat completion, or None when the client
# returned nothing (LiteLLM's built-in does that for some server errors).
Send = Callable[[str, list[dict[str, Any]], Any], Any]


@dataclass
class Step:
    model: str
    name: str
    arguments: dict[str, Any]
    result: str


@dataclass
class AgentRun:
    answer: str = ""
    steps: list[Step] = field(default_factory=list)


def run_tool(name: str, arguments: dict[str, Any], workspace: Path) -> str:
    if name == "read_notes":
        return NOTES.get(str(arguments.get("topic", "")).lower(), f"No notes on {arguments.get('topic')!r}.")
    if name == "write_file":
        filename = Path(str(arguments.get("filename") or "notes.txt")).name or "notes.txt"
        (workspace / filename).write_text(str(arguments.get("text", "")))
        return f"Wrote {len(str(arguments.get('text', '')))} characters to {filename}."
    if name == "finish":
        return "Done."
    return f"Unknown tool {name!r}."


def opening(task: str = TASK) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def assistant_turn(message: Any) -> dict[str, Any]:
    """An OpenAI-shaped reply message as the plain dict the next request carries."""
    turn: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    calls = message.tool_calls or []
    if calls:
        turn["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in calls
        ]
    return turn


def parsed_arguments(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_agent(
    send: Send,
    *,
    worker_model: str = "fast",
    planner_model: str = "smart",
    task: str = TASK,
    max_steps: int = 6,
    workspace: Path,
    on_step: Callable[[Step], None] | None = None,
    plan: Sequence[str] = (),
) -> AgentRun:
    """Cheap steps on `worker_model`, the first (planning) and last step on `planner_model`. The first
    steps call the tools `plan` names, in order (a named `tool_choice`); the others may call any tool,
    the last one `finish`. Stops at `finish`, after `max_steps`, or when `send` returns nothing."""
    workspace.mkdir(parents=True, exist_ok=True)
    messages = opening(task)
    run = AgentRun()
    for step_number in range(max_steps):
        last = step_number == max_steps - 1
        model = planner_model if step_number == 0 or last else worker_model
        named = "finish" if last else (plan[step_number] if step_number < len(plan) else None)
        tool_choice: Any = {"type": "function", "function": {"name": named}} if named else "required"
        response = send(model, messages, tool_choice)
        if response is None:
            return run
        message = response.choices[0].message
        calls = message.tool_calls or []
        if not calls:  # a cut-off reply (max_tokens), or a client that offers no call: ask again
            messages = [*messages, assistant_turn(message), {"role": "user", "content": RETRY}]
            continue
        messages = [*messages, assistant_turn(message)]
        for call in calls:
            arguments = parsed_arguments(call.function.arguments)
            result = run_tool(call.function.name, arguments, workspace)
            step = Step(model=model, name=call.function.name, arguments=arguments, result=result)
            run.steps.append(step)
            if on_step:
                on_step(step)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            if call.function.name == "finish":
                run.answer = str(arguments.get("answer", ""))
                return run
    return run
