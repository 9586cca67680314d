"""The main job, end to end (README's first command, `scripts/main-job`): real llama.cpp servers (ChatML and a
Mistral-style template; or yours via LLAMAFILE_API_BASE), the LiteLLM proxy started with `litellm --config`,
and the example agent on "Tell me about Roman dodecahedrons" through the official OpenAI SDK; per turn, what
the adapter did, then the same turns through LiteLLM's built-in `llamafile` provider, and a summary.

    .venv/bin/python examples/main_job.py        (the same as `litellm-llamafile demo`)
"""

from __future__ import annotations

import sys

from litellm_llamafile.cli.demo import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="examples/main_job.py"))
