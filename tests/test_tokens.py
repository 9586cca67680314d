"""Exact token counts: the adapter's count equals the server's usage.prompt_tokens for the same request,
and a growing history is not re-tokenized every turn."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

import litellm_llamafile
from litellm_llamafile.server import token_cache

from .support.data import FINISH, SEARCH, SYSTEM, TASK
from .support.servers import SentRequest, Servers

pytestmark = pytest.mark.vcr

TOOL_TURNS: list[dict[str, Any]] = [
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
            },
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "Hollow bronze objects with twelve pentagonal faces.",
    },
    {"role": "assistant", "content": "They are small bronze objects of unknown purpose."},
    {"role": "user", "content": "Where were they found?"},
]

CONVERSATIONS: dict[str, tuple[str, list[dict[str, Any]], list[dict[str, Any]] | None, Any]] = {
    "chatml-one-user-turn": ("chatml", [{"role": "user", "content": TASK}], None, None),
    "chatml-system-and-user": ("chatml", TOOL_TURNS[:2], None, None),
    "chatml-tools-offered": ("chatml", TOOL_TURNS[:2], [SEARCH, FINISH], None),
    "chatml-history-with-tool-results": ("chatml", TOOL_TURNS, [SEARCH, FINISH], "auto"),
    "chatml-forced-call": ("chatml", TOOL_TURNS[:2], [SEARCH, FINISH], "required"),
    "mistral-system-and-user": ("mistral", TOOL_TURNS[:2], None, None),
    "mistral-history-with-tool-results": ("mistral", TOOL_TURNS, [SEARCH, FINISH], None),
}


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_count_equals_the_servers_prompt_tokens(servers: Servers, name: str) -> None:
    role, messages, tools, tool_choice = CONVERSATIONS[name]
    url = servers.url(role)
    counted = litellm_llamafile.count_tokens(messages, tools=tools, tool_choice=tool_choice, api_base=url)
    extra: dict[str, Any] = {"tools": tools, "tool_choice": tool_choice} if tools else {}
    response = litellm.completion(
        model="llamafile/smol", messages=messages, api_base=url, max_tokens=1, temperature=0, **extra
    )
    assert counted == response.usage.prompt_tokens


def test_litellm_token_counter_counts_llamafile_models_on_the_server(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMAFILE_API_BASE", servers.url("chatml"))
    messages = TOOL_TURNS[:2]
    exact = litellm_llamafile.count_tokens(messages)
    assert litellm.token_counter(model="llamafile/smol", messages=messages) == exact
    # Other models still get LiteLLM's own counter.
    assert litellm.token_counter(model="gpt-4o", messages=messages) > 0


def test_a_growing_history_only_tokenizes_what_is_new(servers: Servers, sent: list[SentRequest]) -> None:
    url = servers.url("chatml")
    history: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    counts = []
    for turn in range(5):
        history += [
            {"role": "user", "content": f"Question {turn}: what else is known about Roman dodecahedrons?"},
            {"role": "assistant", "content": f"Answer {turn}: several hundred words of notes. " * 8},
        ]
        before = len(sent)
        counts.append(litellm_llamafile.count_tokens(history, api_base=url))
        tokenized = [r.body["content"] for r in sent[before:] if r.path == "/tokenize"]
        if turn >= token_cache.VERIFY_FIRST + 1:  # after the self-check, only the new tail is tokenized
            rendered = sum(len(m["content"]) for m in history)
            assert sum(len(text) for text in tokenized) < rendered / 2
    assert counts == sorted(counts) and len(set(counts)) == len(counts)

    before = len(sent)
    assert litellm_llamafile.count_tokens(history, api_base=url) == counts[-1]
    assert len(sent) == before  # an unchanged request costs no HTTP at all

    response = litellm.completion(model="llamafile/smol", messages=history, api_base=url, max_tokens=1)
    assert response.usage.prompt_tokens == counts[-1]  # segmenting never changes the count
