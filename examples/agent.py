"""An AutoGPT-style agent loop that speaks only the OpenAI API (the official `openai` SDK), pointed at the
LiteLLM proxy that serves `llamafile/...` models through litellm-llamafile.

Every step the model must answer with a tool call (tool_choice="required", which the adapter enforces
with constrained sampling, so a small local model's call is always valid JSON for one of the tools).
The tools are local and offline: notes to read, a workspace to write files into, and `finish`. The loop
itself is `litellm_llamafile.cli.demo_agent` (the main job runs it too).

    python examples/agent.py --base-url http://127.0.0.1:4000/v1 --api-key $LITELLM_MASTER_KEY
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from openai import OpenAI

from litellm_llamafile.cli.demo_agent import NOTES, SYSTEM, TASK, TOOLS, AgentRun, Step, run_agent, run_tool

__all__ = ["NOTES", "SYSTEM", "TASK", "TOOLS", "AgentRun", "Step", "run_agent", "run_tool"]


def openai_send(client: OpenAI) -> Any:
    def send(model: str, messages: list[dict[str, Any]], tool_choice: Any) -> Any:
        return client.chat.completions.create(
            model=model,
            messages=messages,
            tools=TOOLS,
            tool_choice=tool_choice,
            max_tokens=256,
            temperature=0.3,
        )

    return send


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
    run = run_agent(
        openai_send(OpenAI(base_url=args.base_url, api_key=args.api_key)),
        worker_model=args.worker_model,
        planner_model=args.planner_model,
        task=args.task,
        workspace=Path(os.environ.get("AGENT_WORKSPACE", "agent-workspace")),
        on_step=lambda s: print(
            f"  [{s.model}] {s.name}({json.dumps(s.arguments)[:160]}) -> {s.result[:80]}"
        ),
    )
    print(f"\nAnswer: {run.answer or '(no answer)'}")
    return 0 if run.answer else 1


if __name__ == "__main__":
    sys.exit(main())
