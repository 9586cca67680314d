"""Each response says what the adapter did to its request (`_hidden_params["llamafile"]`, and through the
proxy the `x-llamafile-*` response headers): how the roles were shaped for the template, how the tools
were offered, what constrained the reply. Nothing of the conversation is in it."""

from __future__ import annotations

from typing import Any

import litellm
import pytest

from litellm_llamafile.flows.adapter_report import adapter_report, attach_report
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.prompt.roles import OPEN, STRICT

from .support.data import FINISH, SEARCH, SYSTEM, TASK
from .support.servers import Servers

MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]


def report(
    template: Any, params: dict[str, Any], messages: list[dict[str, Any]] = MESSAGES
) -> dict[str, str]:
    request = build_chat_request("m", Conversation.of(messages), params, RequestProfile(strategy=template))
    return adapter_report(request, template, len(messages))


def test_a_forced_call_on_a_mistral_template_reports_the_fold_the_signatures_and_the_schema() -> None:
    found = report(STRICT, {"tools": [SEARCH, FINISH], "tool_choice": "required"})
    assert found == {
        "roles": "mistral (system folded into the first user turn, strict user/assistant alternation, "
        "tool turns as text): 2 messages -> 1 turns",
        "tools": "2 tools as signatures in the system text",
        "constraint": "json_schema: one valid call (tool_choice=required)",
        "route": "chat: /v1/chat/completions",
    }


def test_auto_on_chatml_is_parsed_not_constrained_and_a_plain_chat_has_no_tools() -> None:
    auto = report(OPEN, {"tools": [SEARCH]})
    assert auto["roles"].startswith("chatml (system role and order kept")
    assert auto["constraint"] == "none: the reply is parsed for calls (tool_choice=auto)"
    plain = report(OPEN, {})
    assert plain["tools"] == "none offered" and plain["constraint"] == "none"


def test_the_report_carries_no_text_of_the_conversation_and_reaches_the_proxy_headers() -> None:
    hidden: dict[str, Any] = {"additional_headers": {"x-other": "1"}}
    attach_report(hidden, report(STRICT, {"tools": [SEARCH], "tool_choice": "required"}))
    assert hidden["additional_headers"]["x-other"] == "1"
    assert hidden["additional_headers"]["x-llamafile-tools"] == "1 tool as signatures in the system text"
    assert all(TASK not in value and "web_search" not in value for value in hidden["llamafile"].values())


@pytest.mark.vcr
def test_a_real_call_reports_what_was_done(servers: Servers) -> None:
    response = litellm.completion(
        model="llamafile/x",
        messages=MESSAGES,
        api_base=servers.url("mistral"),
        tools=[SEARCH],
        tool_choice="required",
        max_tokens=48,
        temperature=0,
        seed=7,
    )
    found = response._hidden_params["llamafile"]
    assert found["roles"].startswith("mistral (system folded into the first user turn")
    assert found["constraint"].startswith("json_schema") or found["constraint"].startswith("grammar")
