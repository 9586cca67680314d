"""OpenAI Agents SDK (`LitellmModel`), unmodified, runs the one-tool task through `llamafile/smollm2`.

    python examples/frameworks/openai_agents_run.py API_BASE [--variant default|required]

`required` is the SDK's own `ModelSettings(tool_choice="required")`: the first turn must call a tool
(the adapter constrains it), and the SDK's `reset_tool_choice` (on by default) makes the next turn auto.
On those auto turns SmolLM2-135M may call the tool again each time; the SDK then stops the run at
`max_turns` with `MaxTurnsExceeded`, which is the model's choice, so it is reported as the answer.
"""

from __future__ import annotations

import sys

from observe import MODEL, TASK, TIMEOUT, count_faces, main

MAX_TURNS = 4


def run(api_base: str, variant: str) -> str:
    from agents import Agent, ModelSettings, Runner, function_tool, set_tracing_disabled
    from agents.exceptions import MaxTurnsExceeded
    from agents.extensions.models.litellm_model import LitellmModel

    set_tracing_disabled(True)  # tracing would upload to OpenAI
    settings = ModelSettings(
        max_tokens=128,
        tool_choice="required" if variant == "required" else None,
        extra_args={"timeout": TIMEOUT},
    )
    agent = Agent(
        name="faces",
        instructions="You answer questions about solids with the count_faces tool.",
        tools=[function_tool(count_faces)],
        model=LitellmModel(model=MODEL, base_url=api_base, api_key="none"),
        model_settings=settings,
    )
    try:
        return str(Runner.run_sync(agent, TASK, max_turns=MAX_TURNS).final_output)
    except MaxTurnsExceeded:
        return f"(no answer: the model still called the tool at turn {MAX_TURNS}, the SDK's max_turns)"


if __name__ == "__main__":
    sys.exit(main("openai-agents", run, variants=("default", "required")))
