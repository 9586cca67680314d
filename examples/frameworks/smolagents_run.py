"""smolagents (`LiteLLMModel` with a `ToolCallingAgent`), unmodified, runs the one-tool task.

python examples/frameworks/smolagents_run.py API_BASE
"""

from __future__ import annotations

import sys

from observe import MODEL, TASK, TIMEOUT, count_faces, main


def run(api_base: str, variant: str) -> str:
    from smolagents import LiteLLMModel, ToolCallingAgent, tool

    model = LiteLLMModel(model_id=MODEL, api_base=api_base, api_key="none", max_tokens=128, timeout=TIMEOUT)
    agent = ToolCallingAgent(tools=[tool(count_faces)], model=model, max_steps=3, verbosity_level=0)
    return str(agent.run(TASK))


if __name__ == "__main__":
    sys.exit(main("smolagents", run))
