"""One tool-using agent conversation on real servers under llama.cpp's own templates (SmolLM2 under each):
a forced call, the tool's result with tool_choice auto, then a follow-up. Each family must answer without
a server error, give a schema-valid forced call, count every prompt exactly (count_tokens equals the
server's prompt_tokens) and keep the prompt cache from turn to turn. The whole corpus runs in
bench/template_corpus.py; these are the families whose handling differs."""

from __future__ import annotations

import pytest

from .support.agent_conversation import converse
from .support.servers import Servers

FAMILIES = [
    "qwen3",  # thinking switch honoured: an empty think block closes the prompt
    "smollm3",  # the switch is rendered into the system block
    "gemma4",
    "r1distill",  # the generation prompt opens a think block
    "minimax_m2",  # ... even with thinking off
    "cohere2",
    "kimi_k3",  # the server's own reply reader refuses unconstrained text: sent past it
    "gpt_oss",  # the server alone fails a plain chat
    "glm46",
    "llama31",
    "hermes3",
    "nemo",  # strict alternation, no system role
]


@pytest.mark.vcr
@pytest.mark.parametrize("role", FAMILIES)
def test_an_agent_conversation_holds_on_every_family(servers: Servers, role: str) -> None:
    try:
        converse(servers.url(role))
    finally:
        servers.release(role)
