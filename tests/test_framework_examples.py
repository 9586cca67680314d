"""Every framework example (`examples/frameworks/*_run.py`, each variant) runs to its end against a real
ChatML server, in the framework's own venv from PyPI (`scripts/frameworks-run --venvs-only` makes one
when missing), so an example cannot crash unseen. What the model does with the tools is SmolLM2-135M's
choice and is not asserted (an agent loop the model keeps calling in is stopped by the framework's own
limit); that the framework's own code ran without an exception is, and so is that a call the model made
was run by the framework (DSPy's `predict` variant crashed there once), and that a forced turn made one.

Live only, and the slowest module of the live tier: about a minute per run on a quiet 2-core machine."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from litellm_llamafile.harness.embedded_server import EmbeddedServer

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "frameworks"
VENVS = Path(os.environ.get("FW_VENVS", "/tmp"))
RUN_TIMEOUT = float(os.environ.get("FW_RUN_TIMEOUT", "900"))
# framework -> (script, its variants), as scripts/frameworks-run has them
RUNS = {
    "openai-agents": ("openai_agents_run.py", ("default", "required")),
    "smolagents": ("smolagents_run.py", ("default",)),
    "dspy": ("dspy_run.py", ("react", "predict")),
    "crewai": ("crewai_run.py", ("default",)),
}
CASES = [(fw, variant) for fw, (_, variants) in RUNS.items() for variant in variants]
SLOTS = 2


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """One slot of 4096 tokens per concurrent run, as scripts/frameworks-run gives them."""
    with EmbeddedServer(ctx_size=4096 * SLOTS, slots=SLOTS) as started:
        yield started.base_url


def venv_python(framework: str) -> Path:
    python = VENVS / f"fw-{framework}" / "bin" / "python"
    if not python.exists():
        subprocess.run([str(ROOT / "scripts" / "frameworks-run"), "--venvs-only", framework], check=True)
    return python


def run_example(framework: str, variant: str, api_base: str) -> dict[str, Any]:
    script, _ = RUNS[framework]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{EXAMPLES}", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [str(venv_python(framework)), str(EXAMPLES / script), api_base, "--variant", variant],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"{framework} {variant} crashed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@pytest.mark.parametrize(("framework", "variant"), CASES, ids=[f"{fw}-{v}" for fw, v in CASES])
def test_the_example_runs_to_its_end(server: str, framework: str, variant: str) -> None:
    result = run_example(framework, variant, server)
    assert "error" not in result, f"{result['error']}\n" + "\n".join(result.get("traceback_tail", []))
    assert result["sent_tools"], "the framework sent its tool"
    if variant == "required":
        first = result["per_turn"][0]
        assert first["tool_choice"] == "required" and first["reply_calls"], "the forced turn made a call"
    if result["call_well_formed"]:
        assert result["tool_ran"], "a well-formed call was made and the framework did not run the tool"
