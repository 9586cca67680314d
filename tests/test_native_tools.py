"""`llamafile_tool_prompt="native"`: where llama-server says its chat template renders tools itself, the
offered tools reach the prompt in the template's own format. The prompt is rendered by /apply-template
and sampled from /v1/completions (llama-server takes no grammar beside `tools`), so forced calls keep
the adapter's constraint, replies its parser, and counts stay exact. Anywhere else the generic
instructions stay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest

import litellm_llamafile
from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.request import RequestProfile, build_chat_request, template_body
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.prompt.tools import tool_instructions

from .support.calls import MODES, call
from .support.data import WEATHER
from .support.fake_server import CHATML_TEMPLATE, Exchange, FaultyServer

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
TOOLS = [WEATHER]
USER = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Weather in Oslo?"}]
NATIVE = {"llamafile_tool_prompt": "native"}
CALL_TEXT = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'


def test_the_template_renders_the_tools_in_place_of_the_adapters_instructions() -> None:
    params = {"tools": TOOLS, "tool_choice": "required"}
    native = build_chat_request(
        "x", Conversation.of(USER), params, RequestProfile(strategy=TemplateName.CHATML, native_tools=True)
    )
    generic = build_chat_request(
        "x", Conversation.of(USER), params, RequestProfile(strategy=TemplateName.CHATML)
    )
    assert native.messages[0]["content"] == "Be terse."
    assert tool_instructions(TOOLS) in str(generic.messages[0]["content"])
    assert template_body(native)["tools"] == TOOLS
    assert "tools" not in template_body(generic)
    assert native.payload.get("grammar") or native.payload.get("response_format")  # still constrained


def _server(*, renders_tools: bool) -> Callable[[Exchange], None]:
    """llama-server --jinja whose template does (or does not) render tools; /v1/completions answers the
    forced call the constraint allows, as JSON or as text events."""

    def every(exchange: Exchange) -> None:
        path = exchange.seen.path
        if path == "/props":
            caps = {"supports_tools": renders_tools, "supports_system_role": True}
            exchange.reply(
                200, {"chat_template": CHATML_TEMPLATE, "total_slots": 1, "chat_template_caps": caps}
            )
        elif path == "/apply-template":
            tools = exchange.payload().get("tools") or []
            names = ",".join(t["function"]["name"] for t in tools)
            exchange.reply(200, {"prompt": f"<tools>{names}</tools> Be terse. Weather in Oslo? assistant:"})
        elif path == "/tokenize":
            exchange.reply(200, {"tokens": list(range(len(exchange.payload()["content"].split())))})
        elif path == "/v1/completions" and exchange.payload().get("stream"):
            pieces = [CALL_TEXT[:20], CALL_TEXT[20:]]
            events: list[Any] = [
                {"choices": [{"index": 0, "text": p, "finish_reason": None}]} for p in pieces
            ]
            usage = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
            events += [
                {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]},
                {"choices": [], "usage": usage},
            ]
            exchange.sse(events)
        elif path == "/v1/completions":
            usage = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
            choice = {"index": 0, "text": CALL_TEXT, "finish_reason": "stop"}
            exchange.reply(200, {"object": "text_completion", "choices": [choice], "usage": usage})
        else:
            message = {"role": "assistant", "content": CALL_TEXT}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            exchange.reply(
                200, {"choices": [choice], "usage": {"prompt_tokens": 30, "completion_tokens": 12}}
            )

    return every


def _calls(result: Any) -> list[tuple[str, dict[str, Any]]]:
    built = litellm.stream_chunk_builder(result) if isinstance(result, list) else result
    return [(c.function.name, json.loads(c.function.arguments)) for c in built.choices[0].message.tool_calls]


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_a_forced_call_with_tools_the_template_renders(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(every=_server(renders_tools=True))
    result = call(mode, api_base=server.url, messages=USER, tools=TOOLS, tool_choice="required", **NATIVE)
    assert _calls(result) == [("get_weather", {"city": "Oslo"})]
    rendered = next(json.loads(s.body) for s in server.requests if s.path == "/apply-template")
    sampled = next(json.loads(s.body) for s in server.requests if s.path == "/v1/completions")
    assert rendered["tools"] == TOOLS
    assert sampled["prompt"].startswith("<tools>get_weather</tools>")
    assert "grammar" in sampled or "json_schema" in sampled  # the adapter's constraint, unchanged
    assert not server.chat_requests
    counted = litellm_llamafile.count_tokens(
        USER, model="x", tools=TOOLS, tool_choice="required", api_base=server.url, options=NATIVE
    )
    assert counted == len(sampled["prompt"].split())


@local_only
def test_a_template_that_does_not_render_tools_keeps_the_generic_instructions(
    faulty: Callable[..., FaultyServer],
) -> None:
    server = faulty(every=_server(renders_tools=False))
    result = call("sync", api_base=server.url, messages=USER, tools=TOOLS, tool_choice="required", **NATIVE)
    assert _calls(result) == [("get_weather", {"city": "Oslo"})]
    (sent,) = server.chat_requests
    assert tool_instructions(TOOLS) in json.loads(sent.body)["messages"][0]["content"]
    assert not any(s.path == "/v1/completions" for s in server.requests)


def test_a_count_option_that_would_be_dropped_is_refused() -> None:
    with pytest.raises(TypeError, match="llamafile_tool_prompt"):
        litellm_llamafile.count_tokens(USER, llamafile_tool_prompt="native")  # type: ignore[call-arg]
