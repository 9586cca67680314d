"""The adapter on the two real models beside SmolLM2 (litellm_llamafile.embedded_server.MODELS):
Qwen2.5-Coder 0.5B, trained to call tools, under its own tool-aware template, and Gemma 3 270M, whose
tokenizer adds a BOS token, under its ChatML fallback and under corpus templates (Gemma 2's writes
`{{ bos_token }}` itself). A handful of checks per model run in both tiers: exact counts, the agent
conversation (forced call, tool result, follow-up, prompt cache), and the prompt cache over a longer
agent loop; the proxy check is in test_proxy_models.py, the rest in the slow tier and the benches."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

import litellm_llamafile

from .support.agent_conversation import converse
from .support.data import FINISH, SEARCH, SYSTEM, TASK
from .support.servers import Servers

HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": TASK},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "web_search", "arguments": '{"query": "Roman dodecahedron"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "Hollow bronze objects with twelve faces."},
    {"role": "assistant", "content": "They are small bronze objects of unknown purpose."},
    {"role": "user", "content": "Where were they found?"},
]
# name -> (messages, tools, tool_choice)
REQUESTS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]] | None, str | None]] = {
    "one user turn": ([{"role": "user", "content": TASK}], None, None),
    "tools offered": (HISTORY[:2], [SEARCH, FINISH], None),
    "history with tool results": (HISTORY, [SEARCH, FINISH], "auto"),
    "forced call": (HISTORY[:2], [SEARCH, FINISH], "required"),
}


@pytest.mark.vcr
@pytest.mark.parametrize("role", ["qwen", "gemma3", "gemma3_gemma2"])
def test_count_equals_the_servers_prompt_tokens_on_every_request(servers: Servers, role: str) -> None:
    url = servers.url(role)
    for name, (messages, tools, tool_choice) in REQUESTS.items():
        counted = litellm_llamafile.count_tokens(
            messages, model="m", tools=tools, tool_choice=tool_choice, api_base=url
        )
        extra: dict[str, Any] = {"tools": tools, "tool_choice": tool_choice} if tools else {}
        response = litellm.completion(
            model="llamafile/m", messages=messages, api_base=url, max_tokens=1, temperature=0, **extra
        )
        assert counted == response.usage.prompt_tokens, name


@pytest.mark.vcr
def test_the_agent_conversation_holds_on_gemma3(servers: Servers) -> None:
    converse(servers.url("gemma3"))


@pytest.mark.vcr
@pytest.mark.parametrize("tool_prompt", ["generic", "native"])
def test_the_agent_conversation_holds_on_qwen(servers: Servers, tool_prompt: str) -> None:
    # Qwen's template renders tools itself: native takes the text route (/apply-template, /v1/completions).
    converse(servers.url("qwen"), llamafile_tool_prompt=tool_prompt)


@pytest.mark.vcr
@pytest.mark.parametrize("role", ["gemma3_llama31", "gemma3_nemo"])
def test_a_bos_adding_model_counts_exactly_under_other_families(servers: Servers, role: str) -> None:
    try:
        converse(servers.url(role))
    finally:
        servers.release(role)


@pytest.mark.live
@pytest.mark.slow
@pytest.mark.parametrize("role", ["qwen", "gemma3"])
def test_a_longer_agent_loop_keeps_the_prompt_cache_and_exact_counts(servers: Servers, role: str) -> None:
    url = servers.url(role)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": TASK},
    ]
    previous = 0
    for turn in range(6):
        choice = "required" if turn % 2 == 0 else "auto"
        response = litellm.completion(
            model="llamafile/m",
            messages=messages,
            tools=[SEARCH, FINISH],
            tool_choice=choice,
            api_base=url,
            max_tokens=32,
            temperature=0,
            timeout=1800,
        )
        counted = litellm_llamafile.count_tokens(
            messages, model="m", tools=[SEARCH, FINISH], tool_choice=choice, api_base=url
        )
        assert counted == response.usage.prompt_tokens, turn
        assert response.usage.prompt_tokens_details.cached_tokens >= previous - 16, turn
        previous = response.usage.prompt_tokens
        message = response.choices[0].message
        calls = [c.model_dump() for c in message.tool_calls or []]
        messages.append({"role": "assistant", "content": message.content, "tool_calls": calls or None})
        messages += [{"role": "tool", "tool_call_id": c["id"], "content": f"Result {turn}."} for c in calls]
        messages.append({"role": "user", "content": f"Step {turn + 2}: go on."})
