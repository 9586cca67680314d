"""The main job, end to end: a real llama.cpp server (embedded, or yours via LLAMAFILE_API_BASE), the
LiteLLM proxy started with `litellm --config llamafile.yaml`, and the example agent driving it through
the official OpenAI SDK on the task "Tell me about Roman dodecahedrons".

    .venv/bin/python examples/main_job.py
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent import TASK, Step, run_agent

from litellm_llamafile.cli.proxy_config import running_proxy
from litellm_llamafile.harness.embedded_server import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def llamafile_server() -> Iterator[str]:
    external = os.environ.get("LLAMAFILE_API_BASE")
    if external:
        print(f"Using your llamafile server at {external}")
        yield external
        return
    with EmbeddedServer(template="chatml") as server:
        yield server.base_url


@contextlib.contextmanager
def litellm_proxy(server_url: str, master_key: str) -> Iterator[str]:
    """`litellm --config llamafile.yaml` with both model names (smart, fast) on this one server."""
    env = {"LLAMAFILE_SMART_API_BASE": server_url, "LLAMAFILE_FAST_API_BASE": server_url}
    with running_proxy(ROOT / "llamafile.yaml", env=env, master_key=master_key) as (url, _):
        print(f"LiteLLM proxy (litellm --config llamafile.yaml) at {url}")
        yield url


def show(step: Step) -> None:
    print(f"  tool call [{step.model}]: {step.name}({json.dumps(step.arguments, ensure_ascii=False)[:200]})")


def main() -> int:
    master_key = "sk-" + secrets.token_urlsafe(32)
    with llamafile_server() as server_url, litellm_proxy(server_url, master_key) as proxy_url:
        client = OpenAI(base_url=f"{proxy_url}/v1", api_key=master_key)
        print(f"Task: {TASK}")
        with tempfile.TemporaryDirectory() as workspace:
            run = run_agent(client, workspace=Path(workspace), on_step=show)
    print(f"\nModel's answer: {run.answer or '(none)'}")
    print(f"Tool calls made: {', '.join(s.name for s in run.steps) or '(none)'}")
    return 0 if run.answer else 1


if __name__ == "__main__":
    raise SystemExit(main())
