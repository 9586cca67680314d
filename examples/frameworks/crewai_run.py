"""CrewAI (one agent, one tool), unmodified, runs the one-tool task through `llamafile/smollm2`.

python examples/frameworks/crewai_run.py API_BASE
"""

from __future__ import annotations

import os
import sys

# CrewAI's telemetry and tracing would reach its servers; only 127.0.0.1 is contacted here.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")

from observe import MODEL, TASK, TIMEOUT, count_faces, main


def run(api_base: str, variant: str) -> str:
    from crewai import LLM, Agent, Crew, Task
    from crewai.tools import tool

    llm = LLM(model=MODEL, base_url=api_base, api_key="none", max_tokens=128, timeout=TIMEOUT)
    agent = Agent(
        role="Geometer",
        goal="Answer questions about solids using the count_faces tool",
        backstory="You know the regular solids.",
        tools=[tool("count_faces")(count_faces)],
        llm=llm,
        max_iter=3,
        verbose=False,
    )
    task = Task(description=TASK, expected_output="The number of faces.", agent=agent)
    return str(Crew(agents=[agent], tasks=[task], verbose=False).kickoff())


if __name__ == "__main__":
    sys.exit(main("crewai", run))
