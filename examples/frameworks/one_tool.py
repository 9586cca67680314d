"""One agent framework, unmodified, runs a one-tool task through `model="llamafile/..."` (the adapter).

    python examples/frameworks/one_tool.py FRAMEWORK API_BASE [--variant NAME]

FRAMEWORK: openai-agents | smolagents | dspy | crewai (each needs its own venv: see run.sh beside this
file). The task: "How many faces does a Roman dodecahedron have?" with one tool, `count_faces(solid)`.
Prints one JSON line: whether the tool ran (and with what), the framework's final answer or the error.
Variants are the framework's own documented settings (for example tool_choice="required"), never
patches to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm_llamafile

TASK = "How many faces does a Roman dodecahedron have? Use the count_faces tool, then answer."
MODEL = "llamafile/smollm2"
CALLS: list[str] = []  # every run of the tool, with its argument: the proof that a call arrived


def count_faces(solid: str) -> str:
    """Number of faces of a regular solid.

    Args:
        solid: The solid's name, such as "dodecahedron".
    """
    CALLS.append(solid)
    faces = {"tetrahedron": 4, "cube": 6, "octahedron": 8, "dodecahedron": 12, "icosahedron": 20}
    return str(next((n for name, n in faces.items() if name in solid.lower()), "unknown"))


def run_openai_agents(api_base: str, variant: str) -> str:
    from agents import Agent, ModelSettings, Runner, function_tool, set_tracing_disabled
    from agents.extensions.models.litellm_model import LitellmModel

    set_tracing_disabled(True)  # tracing would upload to OpenAI
    settings = ModelSettings(max_tokens=128, tool_choice="required" if variant == "required" else None)
    agent = Agent(
        name="faces",
        instructions="You answer questions about solids with the count_faces tool.",
        tools=[function_tool(count_faces)],
        model=LitellmModel(model=MODEL, base_url=api_base, api_key="none"),
        model_settings=settings,
    )
    result = Runner.run_sync(agent, TASK, max_turns=4)
    return str(result.final_output)


def run_smolagents(api_base: str, variant: str) -> str:
    from smolagents import LiteLLMModel, ToolCallingAgent, tool

    model = LiteLLMModel(model_id=MODEL, api_base=api_base, api_key="none", max_tokens=128)
    agent = ToolCallingAgent(tools=[tool(count_faces)], model=model, max_steps=3)
    return str(agent.run(TASK))


def run_dspy(api_base: str, variant: str) -> str:
    import dspy

    class Faces(dspy.Signature):
        """Answer the question with the help of the tools."""

        question: str = dspy.InputField()
        tools: list[dspy.Tool] = dspy.InputField()
        answer: str = dspy.OutputField()
        tool_calls: dspy.ToolCalls = dspy.OutputField()

    lm = dspy.LM(MODEL, api_base=api_base, api_key="none", max_tokens=256, cache=False)
    adapter = dspy.JSONAdapter(use_native_function_calling=True) if variant == "json" else None
    adapter = adapter or dspy.ChatAdapter(use_native_function_calling=True)
    dspy.configure(lm=lm, adapter=adapter)
    prediction = dspy.Predict(Faces)(question=TASK, tools=[dspy.Tool(count_faces)])
    for call in prediction.tool_calls.tool_calls if prediction.tool_calls else []:
        call.execute(functions=[count_faces])  # DSPy returns calls; the program runs them
    return str(prediction.answer)


def run_crewai(api_base: str, variant: str) -> str:
    from crewai import LLM, Agent, Crew, Task
    from crewai.tools import tool

    if variant == "warm":  # defect 1 workaround: one call first, so LiteLLM knows the model calls tools
        import litellm

        litellm.completion(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], api_base=api_base, max_tokens=1
        )
    llm = LLM(model=MODEL, base_url=api_base, api_key="none", max_tokens=128)
    faces_tool = tool("count_faces")(count_faces)
    agent = Agent(
        role="Geometer",
        goal="Answer questions about solids using the count_faces tool",
        backstory="You know the regular solids.",
        tools=[faces_tool],
        llm=llm,
        max_iter=3,
        verbose=False,
    )
    task = Task(description=TASK, expected_output="The number of faces.", agent=agent)
    return str(Crew(agents=[agent], tasks=[task], verbose=False).kickoff())


RUNNERS = {
    "openai-agents": run_openai_agents,
    "smolagents": run_smolagents,
    "dspy": run_dspy,
    "crewai": run_crewai,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("framework", choices=sorted(RUNNERS))
    parser.add_argument("api_base")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--template", default="")
    args = parser.parse_args()
    litellm_llamafile.register()
    import litellm

    before = {
        "supports_function_calling": litellm.supports_function_calling(model=MODEL),
    }
    started = time.monotonic()
    result: dict[str, Any] = {"framework": args.framework, "template": args.template, "variant": args.variant}
    try:
        result["answer"] = RUNNERS[args.framework](args.api_base, args.variant)[:300]
    except Exception as error:  # the row records what failed
        result["error"] = f"{type(error).__name__}: {error}"[:600]
        result["traceback_tail"] = traceback.format_exc().splitlines()[-6:]
    result.update(
        tool_calls=CALLS,
        tool_ran=bool(CALLS),
        seconds=round(time.monotonic() - started, 1),
        before_first_call=before,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
