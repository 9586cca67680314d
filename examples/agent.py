"""An AutoGPT-style agent loop that speaks only the OpenAI API (the official `openai` SDK), pointed at the
LiteLLM proxy that serves `llamafile/...` models through litellm-llamafile.

Every step the model must answer with a tool call (tool_choice="required", which the adapter enforces
with constrained sampling, so a small local model's call is always valid JSON for one of the tools).
The tools are local and offline: notes to read, a workspace to write files into, and `finish`.

    python examples/agent.py --base-url http://127.0.0.1:4000/v1 --api-key $LITELLM_MASTER_KEY
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai import OpenAI

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


def run_agent(
    client: OpenAI,
    *,
    worker_model: str = "fast",
    planner_model: str = "smart",
    task: str = TASK,
    max_steps: int = 6,
    workspace: Path | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> AgentRun:
    """Run the loop: cheap steps on `worker_model`, the first (planning) and last step on `planner_model`."""
    workspace = workspace or Path(os.environ.get("AGENT_WORKSPACE", "agent-workspace"))
    workspace.mkdir(parents=True, exist_ok=True)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": task},
    ]
    run = AgentRun()
    for step_number in range(max_steps):
        last = step_number == max_steps - 1
        model = planner_model if step_number == 0 or last else worker_model
        tool_choice: Any = {"type": "function", "function": {"name": "finish"}} if last else "required"
        response = client.chat.completions.create(
            model=model,
            messages=messages,
            tools=TOOLS,
            tool_choice=tool_choice,
            max_tokens=256,
            temperature=0.3,
        )
        message = response.choices[0].message
        calls = message.tool_calls or []
        if not calls:  # a cut-off reply (max_tokens): ask again
            messages.append({"role": "user", "content": "Answer with one tool call."})
            continue
        messages.append(message.model_dump(exclude_none=True))
        for call in calls:
            arguments = json.loads(call.function.arguments)
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:4000/v1"))
    parser.add_argument("--api-key", default=os.environ.get("LITELLM_MASTER_KEY", "none"))
    parser.add_argument("--worker-model", default="fast")
    parser.add_argument("--planner-model", default="smart")
    parser.add_argument("--task", default=TASK)
    args = parser.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key)
    run = run_agent(
        client,
        worker_model=args.worker_model,
        planner_model=args.planner_model,
        task=args.task,
        on_step=lambda s: print(
            f"  [{s.model}] {s.name}({json.dumps(s.arguments)[:160]}) -> {s.result[:80]}"
        ),
    )
    print(f"\nAnswer: {run.answer or '(no answer)'}")
    return 0 if run.answer else 1


if __name__ == "__main__":
    sys.exit(main())
