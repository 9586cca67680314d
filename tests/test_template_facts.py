"""Template facts: what a server's template accepts, learned from /props caps and probe renders (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import litellm
import pytest

from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.prompt.roles import OPEN, STRICT, RoleStrategy, reshape_messages
from litellm_llamafile.server.template_facts import (
    CLASSIC,
    PROBES,
    TemplateFacts,
    chosen_strategy,
    facts_flow,
    judge,
    report,
    strategy_from_facts,
    summary,
)

from .support.flows import drive

CAPS_OPEN = {"supports_system_role": True, "supports_tool_calls": False, "supports_tools": False}


def _bad_request(message: str) -> litellm.BadRequestError:
    body = json.dumps({"error": {"code": 400, "message": message, "type": "invalid_request_error"}})
    response = httpx.Response(400, text=body, request=httpx.Request("POST", "http://t/apply-template"))
    error: litellm.BadRequestError = litellm.BadRequestError(
        message=f"http://t/apply-template answered HTTP 400: {message[:40]}",
        model="x",
        llm_provider="llamafile",
        response=response,
    )
    return error


def _not_found() -> litellm.NotFoundError:
    response = httpx.Response(404, request=httpx.Request("GET", "http://t/props"))
    error: litellm.NotFoundError = litellm.NotFoundError(
        message="404", model="x", llm_provider="llamafile", response=response
    )
    return error


def chatml_render(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A template that renders every role's content (and drops tool_calls, like SmolLM2's own)."""
    return {"prompt": "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)}


def alternating_render(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Mistral-7B-style: user/assistant only, strictly alternating, user first."""
    for index, message in enumerate(messages):
        if message["role"] not in ("user", "assistant"):
            raise _bad_request("Only user and assistant roles are supported!")
        if (message["role"] == "user") != (index % 2 == 0):
            raise _bad_request("Conversation roles must alternate user/assistant/user/assistant/...")
    return {"prompt": "".join(f"[INST] {m['content']} [/INST]" for m in messages)}


def system_last_render(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Mistral-Nemo-style: the system text is written into the last user turn."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    rest = [m for m in messages if m["role"] != "system"]
    last_user = max(i for i, m in enumerate(rest) if m["role"] == "user")
    parts = []
    for index, message in enumerate(rest):
        text = message["content"]
        if index == last_user and system:
            text = f"{system}\n\n{text}"
        parts.append(f"[INST]{text}[/INST]" if message["role"] == "user" else text)
    return {"prompt": "".join(parts)}


def server(
    render: Callable[[list[Mapping[str, Any]]], dict[str, Any]], props: Mapping[str, Any] | None
) -> Callable[[str, str, dict[str, Any] | None], Any]:
    def request(method: str, path: str, body: dict[str, Any] | None) -> Any:
        if path == "/props":
            if props is None:
                raise _not_found()
            return props
        assert path == "/apply-template" and body is not None
        return render(body["messages"])

    return request


def learn(
    render: Callable[[list[Mapping[str, Any]]], dict[str, Any]], props: Mapping[str, Any] | None
) -> TemplateFacts:
    return drive(facts_flow(), server(render, props))


def test_an_open_template_gives_todays_chatml_strategy() -> None:
    facts = learn(chatml_render, {"chat_template_caps": CAPS_OPEN})
    assert strategy_from_facts(facts) == OPEN
    assert facts.system and facts.consecutive and facts.assistant_first
    assert not facts.tool_calls  # the assistant's tool_calls never reach the prompt


def test_a_strictly_alternating_template_gives_todays_mistral_strategy() -> None:
    facts = learn(alternating_render, {"chat_template_caps": {"supports_system_role": False}})
    assert strategy_from_facts(facts) == STRICT
    rejected = {o.name: o.detail for o in facts.outcomes if not o.accepted}
    assert "must alternate" in rejected["consecutive"]
    assert "Only user and assistant" in rejected["system"]


def test_caps_saying_no_system_role_win_over_a_server_that_folds_system_itself() -> None:
    # llama-server folds a system turn into the first user turn for such templates: the markers survive.
    facts = learn(chatml_render, {"chat_template_caps": {"supports_system_role": False}})
    assert facts.accepted("system") is True
    assert strategy_from_facts(facts).system is False


def test_system_text_moved_to_the_last_user_turn_is_no_system_role() -> None:
    facts = learn(system_last_render, {})
    outcome = next(o for o in facts.outcomes if o.name == "system")
    assert not outcome.accepted and "moved qzv-system-1" in outcome.detail
    assert strategy_from_facts(facts).system is False


def test_a_template_that_drops_text_does_not_accept_that_probe() -> None:
    def first_assistant_dropped(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
        kept = messages[1:] if messages[0]["role"] == "assistant" else messages
        return chatml_render(kept)

    facts = learn(first_assistant_dropped, {})
    outcome = next(o for o in facts.outcomes if o.name == "assistant_first")
    assert not outcome.accepted and outcome.detail == "dropped qzv-assistant-1"
    assert strategy_from_facts(facts) == RoleStrategy(system=True, consecutive=True, assistant_first=False)


def test_classic_llamafile_without_props_or_apply_template_keeps_the_strict_shape() -> None:
    def nothing(method: str, path: str, body: dict[str, Any] | None) -> Any:
        raise _not_found()

    facts = drive(facts_flow(), nothing)
    assert facts == CLASSIC
    assert strategy_from_facts(facts) == STRICT
    assert "strict" in summary(facts)


def test_caps_alone_decide_the_system_role_when_nothing_renders() -> None:
    def props_only(method: str, path: str, body: dict[str, Any] | None) -> Any:
        if path == "/props":
            return {"chat_template_caps": {"supports_system_role": True}}
        raise _not_found()

    facts = drive(facts_flow(), props_only)
    assert facts.has_props and not facts.can_render
    assert strategy_from_facts(facts) == RoleStrategy(system=True)


def test_a_template_that_renders_nothing_stops_probing_after_the_plain_chat() -> None:
    calls: list[str] = []

    def broken(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
        calls.append(messages[0]["content"])
        raise _bad_request("Unknown filter 'tojson_pretty'")

    facts = learn(broken, {})
    assert len(calls) == 1
    assert facts.renders_plain_chat is False
    assert "cannot render" in report(facts)


def test_connection_failures_are_not_facts() -> None:
    def down(method: str, path: str, body: dict[str, Any] | None) -> Any:
        if path == "/props":
            return {}
        raise litellm.APIConnectionError(message="refused", model="x", llm_provider="llamafile")

    with pytest.raises(litellm.APIConnectionError):
        drive(facts_flow(), down)


def test_props_already_read_are_not_fetched_again() -> None:
    paths: list[str] = []
    request = server(chatml_render, None)

    def spy(method: str, path: str, body: dict[str, Any] | None) -> Any:
        paths.append(path)
        return request(method, path, body)

    facts = drive(facts_flow({"chat_template_caps": CAPS_OPEN}), spy)
    assert "/props" not in paths and facts.has_props
    assert len(paths) == len(PROBES)


def test_every_probe_ends_on_a_turn_the_server_does_not_take_as_a_reply_to_continue() -> None:
    for probe_ in PROBES:
        assert probe_.messages[-1]["role"] in ("user", "tool")


def test_native_tool_turns_need_caps_and_both_probes() -> None:
    def renders_calls(messages: list[Mapping[str, Any]]) -> dict[str, Any]:
        text = chatml_render(messages)["prompt"]
        calls = [c for m in messages for c in m.get("tool_calls", [])]
        return {"prompt": text + json.dumps(calls)}

    with_caps = learn(renders_calls, {"chat_template_caps": {**CAPS_OPEN, "supports_tool_calls": True}})
    assert strategy_from_facts(with_caps) == OPEN  # the default keeps tool turns as text
    native = strategy_from_facts(with_caps, native_tool_turns=True)
    assert native.tool_calls and native.tool_role
    without_caps = learn(renders_calls, {"chat_template_caps": CAPS_OPEN})
    assert not strategy_from_facts(without_caps, native_tool_turns=True).tool_calls


def test_an_explicit_template_setting_wins_over_the_facts() -> None:
    facts = learn(chatml_render, {"chat_template_caps": CAPS_OPEN})
    assert chosen_strategy(TemplateName.MISTRAL, facts) is TemplateName.MISTRAL
    assert chosen_strategy(TemplateName.AUTO, facts) == OPEN
    assert chosen_strategy(TemplateName.AUTO, None) == STRICT


def test_learned_strategies_reshape_like_the_named_ones() -> None:
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ]
    strict = learn(alternating_render, {"chat_template_caps": {"supports_system_role": False}})
    open_ = learn(chatml_render, {"chat_template_caps": CAPS_OPEN})
    assert reshape_messages(messages, strategy_from_facts(strict)) == reshape_messages(
        messages, TemplateName.MISTRAL
    )
    assert reshape_messages(messages, strategy_from_facts(open_)) == reshape_messages(
        messages, TemplateName.CHATML
    )


def test_judge_reads_the_whole_server_message_behind_the_excerpt() -> None:
    long_message = "Unable to generate parser. " + "x" * 400 + " Jinja Exception: roles must alternate"
    (outcome,) = judge(PROBES[2], _bad_request(long_message))
    assert outcome.detail == "roles must alternate"
