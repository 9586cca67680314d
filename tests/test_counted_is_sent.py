"""The prompt a count renders is the prompt the chat request sends (issue 25). Counting
(`count_tokens`, `litellm.token_counter`), the fair share and sending all build their request from one
`RequestProfile` and one `build_chat_request`, so under every role strategy, on a thinking template
and a plain one, with an agent's history of calls and results, the `/apply-template` body a count asks
the server to render holds exactly what the chat request sends. (Before, the count path assembled the
request itself and dropped settings, and flattened an agent's tool turns twice.)

Runs on the transport seam: a server answering by path (tests/support/scripted.py), no socket.
"""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

import litellm_llamafile

from .support.data import SYSTEM, WEATHER
from .support.fake_server import CHATML_TEMPLATE, apply_template, chat_completion
from .support.scripted import Routes, sent_to

THINKING_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|><think>\n{% endif %}"
)
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
}
HISTORY = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Weather in Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C, clear"},
    {"role": "user", "content": "And should I take an umbrella?"},
]


def server(template: str) -> Routes:
    props = {
        "chat_template": template,
        "chat_template_caps": {
            "supports_system_role": True,
            "supports_tools": True,
            "supports_tool_calls": True,
        },
        "default_generation_settings": {"n_ctx": 8192},
        "total_slots": 2,
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
    }
    return Routes(
        {
            "/props": lambda _: props,
            "/apply-template": lambda body: {"prompt": apply_template(list(body.get("messages") or []))},
            "/tokenize": lambda body: {"tokens": [1] * max(1, len(str(body.get("content")).split()))},
            "/v1/chat/completions": lambda _: chat_completion("Take one."),
        }
    )


def rendered_counts(routes: Routes) -> list[dict[str, Any]]:
    """The /apply-template bodies of counts (the `learn` strategy's probe conversations left out)."""
    return [b for b in sent_to(routes, "/apply-template") if "qzv-" not in json.dumps(b)]


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, THINKING_TEMPLATE], ids=["plain", "thinking"])
@pytest.mark.parametrize("strategy", ["auto", "learn", "mistral", "chatml"])
@pytest.mark.parametrize("choice", ["required", "auto"])
def test_the_prompt_counted_is_the_prompt_sent(template: str, strategy: str, choice: str) -> None:
    routes = server(template)
    options = {"llamafile_template": strategy}
    with routes.serving() as url:
        counted = litellm_llamafile.count_tokens(
            HISTORY, tools=[WEATHER], tool_choice=choice, api_base=url, options=options
        )
        litellm.completion(
            model="llamafile/x",
            messages=HISTORY,
            tools=[WEATHER],
            tool_choice=choice,
            api_base=url,
            llamafile_fair_share=True,  # no max_tokens: the reply is capped by a count of this request
            **options,
        )
    (chat,) = sent_to(routes, "/v1/chat/completions")
    sent = {key: chat[key] for key in ("messages", "chat_template_kwargs", "reasoning_format") if key in chat}
    counts = rendered_counts(routes)
    assert counts and all(body == sent for body in counts)
    assert counted > 0 and chat["max_tokens"] == 8192 // 2 - counted  # the fair share counted this prompt
    if template == THINKING_TEMPLATE:
        assert sent["chat_template_kwargs"] == {"enable_thinking": False}


@pytest.mark.parametrize("template", [CHATML_TEMPLATE, THINKING_TEMPLATE], ids=["plain", "thinking"])
def test_litellms_token_counter_counts_the_prompt_sent(template: str) -> None:
    routes = server(template)
    with routes.serving() as url:
        counted = litellm.token_counter(
            model="llamafile/x", messages=HISTORY, tools=[WEATHER], tool_choice="auto", api_base=url
        )
        litellm.completion(
            model="llamafile/x", messages=HISTORY, tools=[WEATHER], api_base=url, llamafile_fair_share=True
        )
    (chat,) = sent_to(routes, "/v1/chat/completions")
    assert [b["messages"] for b in rendered_counts(routes)] == [chat["messages"]]
    assert chat["max_tokens"] == 8192 // 2 - counted
