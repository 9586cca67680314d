"""A schema from a caller costs bounded work: what no constraint can honour, or what would cost more than
the limits (`SchemaLimits`, from `llamafile_schema_max_*` / `constraint_max_bytes` /
`tool_prompt_max_bytes`), is a BadRequestError naming the tool and the limit, raised before any request;
everything else compiles into a grammar and a prompt linear in the schema.

These are the hardening review's reproductions (issue 24): each used to stall the proxy for seconds to
minutes or send megabytes to the server. Their speed is measured by bench/schema_budgets.py; here the
verdicts and the sizes are asserted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litellm_llamafile.core.settings import LlamafileSettings, SchemaLimits, TemplateName
from litellm_llamafile.flows.request import ChatRequest, RequestProfile, build_chat_request
from litellm_llamafile.prompt.constraints import CompiledTools
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.server.servers import SERVERS, Server
from litellm_llamafile.wire.protocol import JSON, Flow, HttpCall, text_size
from litellm_llamafile.wire.transport import LARGE_TEXT

from .support.fake_server import FaultyServer
from .support.gbnf import samples
from .support.schemas import (
    cross_product,
    nested_optional,
    nested_required,
    reference_fan_out,
    type_lists,
)
from .support.scripted import event_stream, serving

REQUEST_CAP = 256 << 10  # what the server may receive for a schema under 8 KB


def request(
    parameters: object,
    choice: str = "required",
    *,
    constraint: str = "grammar",
    thought_schema: dict[str, Any] | None = None,
    limits: SchemaLimits | None = None,
) -> ChatRequest:
    tools = [{"type": "function", "function": {"name": "probe", "parameters": parameters}}]
    return build_chat_request(
        "m",
        Conversation.of([{"role": "user", "content": "hi"}]),
        {"tools": tools, "tool_choice": choice, "max_tokens": 512},
        RequestProfile(
            strategy=TemplateName.CHATML,
            constraint=constraint,
            thought_schema=thought_schema,
            constrain_auto="thought" if thought_schema else False,
            limits=limits or SchemaLimits(),
        ),
    )


def refusal(parameters: object, **how: Any) -> str:
    with pytest.raises(litellm.BadRequestError) as caught:
        request(parameters, **how)
    return str(caught.value)


def sent_bytes(built: ChatRequest) -> int:
    return len(json.dumps(built.payload))


@pytest.mark.parametrize("constraint", ["grammar", "json_schema"])
def test_optional_only_objects_compile_linearly_in_their_depth(constraint: str) -> None:
    # Every member optional, nested 30 deep (the most the default depth allows): the grammar names each
    # member once, so it grows by the same amount per level instead of doubling.
    sizes = [sent_bytes(request(nested_optional(depth), constraint=constraint)) for depth in (10, 20, 30)]
    assert sizes[2] - sizes[1] == pytest.approx(sizes[1] - sizes[0], rel=0.25)
    assert sizes[2] < REQUEST_CAP


def test_an_optional_only_object_admits_every_subset_of_its_members_in_order() -> None:
    schema = {"type": "object", "properties": {k: {"const": i} for i, k in enumerate("abcd")}}
    grammar = request(schema).payload["grammar"]
    seen = {tuple(json.loads(text)["arguments"]) for text in samples(grammar, 300, seed=5)}
    assert () in seen and ("a", "b", "c", "d") in seen and ("b", "d") in seen
    assert all(list(keys) == sorted(keys) for keys in seen)


def test_nesting_past_the_depth_limit_is_refused_naming_the_tool_and_the_limit() -> None:
    message = refusal(nested_required(300))
    assert "'probe'" in message and "schema_max_depth" in message
    assert request(nested_required(100), limits=SchemaLimits(depth=256)).payload["grammar"]


@pytest.mark.parametrize("choice", ["auto", "required"])
def test_repeated_type_names_are_written_once(choice: str) -> None:
    built = request(type_lists(4, repeat=40), choice)
    assert sent_bytes(built) < 8 << 10
    assert built.messages[0]["content"].count("a?: {a?: {a?: {a?: string}}}") == 1


def test_an_all_of_cross_product_past_the_limit_is_refused() -> None:
    assert "schema_max_alternatives" in refusal(cross_product(5, 10))
    built = request(cross_product(2, 10))  # 100 alternatives: within the default 256
    assert sent_bytes(built) < REQUEST_CAP


def test_reference_fan_out_in_the_thought_schema_is_refused() -> None:
    message = refusal({"type": "object", "properties": {}}, thought_schema=reference_fan_out(600, 150))
    assert "llamafile_thought_schema" in message and "constraint_max_bytes" in message


def test_a_constraint_past_its_byte_limit_is_refused() -> None:
    schema = nested_optional(20)
    assert request(schema).payload["grammar"]
    assert "constraint_max_bytes" in refusal(schema, limits=SchemaLimits(constraint_bytes=2000))


def test_tool_instructions_past_their_byte_limit_are_refused() -> None:
    schema = reference_fan_out(40, 40)
    assert "tool_prompt_max_bytes" in refusal(schema, choice="auto", limits=SchemaLimits(prompt_bytes=4000))


@pytest.mark.parametrize(
    ("bound", "why"),
    [
        ({"type": "array", "minItems": 5, "maxItems": 2}, "minItems 5 is above maxItems 2"),
        ({"type": "integer", "maximum": -(10**300)}, "at most 16 digits"),
        ({"type": "number", "minimum": 10**20}, "at most 16 digits"),
        ({"type": "integer", "minimum": float("inf")}, "minimum must be a finite number"),
        ({"type": "integer", "minimum": float("nan")}, "minimum must be a finite number"),
        ({"type": "string", "maxLength": "x"}, "maxLength must be a non-negative integer"),
        ({"type": "string", "minLength": -1}, "minLength must be a non-negative integer"),
        ({"type": "string", "minLength": 10**6}, "above the 8192 a constraint can write"),
        ({"type": "integer", "minimum": 3, "exclusiveMaximum": 3}, "no value lies between"),
        ({"enum": [float("nan")]}, "is not a JSON number"),
    ],
)
def test_bounds_no_constraint_can_honour_are_refused(bound: dict[str, Any], why: str) -> None:
    schema = {"type": "object", "properties": {"v": bound}, "required": ["v"]}
    message = refusal(schema)
    assert why in message and "'probe'" in message


def test_an_explicit_length_is_capped_at_what_a_constraint_can_write() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": 10**12}}}
    grammar = request(schema).payload["grammar"]
    assert "char{0,8192}" in grammar and str(10**12) not in grammar


def test_bounds_beyond_sixteen_digits_on_the_far_side_are_no_bound() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "maximum": 10**30}},
        "required": ["n"],
    }
    for text in samples(request(schema).payload["grammar"], 30, seed=2):
        assert isinstance(json.loads(text)["arguments"]["n"], int)


def test_the_limits_are_deployment_settings_a_request_cannot_raise() -> None:
    settings = LlamafileSettings.resolve(options={"llamafile_schema_max_depth": 200})
    assert settings.schema_limits.depth == 200
    from litellm_llamafile.core.settings import REQUEST_OPTIONS

    assert not {"schema_max_depth", "constraint_max_bytes", "tool_prompt_max_bytes"} & REQUEST_OPTIONS


# -- any schema: an answer or a typed refusal, sized by its input -----------------------------------

_BOUNDS = st.one_of(
    st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3)
)


def _schemas() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])}),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["string", "integer", "array"])},
            optional={
                "minLength": _BOUNDS,
                "maxLength": _BOUNDS,
                "minimum": _BOUNDS,
                "maximum": _BOUNDS,
                "minItems": _BOUNDS,
                "maxItems": _BOUNDS,
            },
        ),
        st.just({"$ref": "#/$defs/D"}),
    )

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        names = st.sampled_from(["a", "b", "c"])
        return st.one_of(
            st.builds(
                lambda p: {"type": "object", "properties": p}, st.dictionaries(names, inner, max_size=3)
            ),
            st.builds(lambda o: {"anyOf": o}, st.lists(inner, min_size=1, max_size=4)),
            st.builds(lambda o: {"allOf": o}, st.lists(inner, min_size=1, max_size=4)),
            st.builds(lambda t, s: {**s, "type": t}, st.lists(st.sampled_from(["object", "array"])), inner),
            st.builds(lambda i: {"type": "array", "items": i}, inner),
        )

    body = st.recursive(leaves, extend, max_leaves=40)
    return st.builds(
        lambda root, d: {**root, "$defs": {"D": d}} if isinstance(root, dict) else root, body, body
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_schemas(), st.sampled_from(["auto", "required"]), st.sampled_from(["grammar", "json_schema"]))
def test_any_schema_gives_a_request_sized_by_its_input_or_a_bad_request(
    schema: Any, choice: str, constraint: str
) -> None:
    try:
        built = request(schema, choice, constraint=constraint)
    except litellm.BadRequestError as error:
        assert "schema refused" in str(error) or "tools[0]" in str(error)
        return
    assert sent_bytes(built) < REQUEST_CAP


# -- the event loop never runs a flow's own work, nor a large event's translation -----------------------


def _slow_flow(seconds: float) -> Flow[bool]:
    time.sleep(seconds)  # a step that holds the CPU (a large schema), before any request
    answer = yield HttpCall("GET", "/props")
    return "chat_template" in answer


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_the_async_driver_runs_flow_steps_off_the_event_loop(faulty: Callable[..., FaultyServer]) -> None:
    server = faulty()
    driver = Server(server.url).async_driver(LlamafileSettings.resolve(api_base=server.url), "m")
    ticks: list[float] = []

    async def ticking(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def both() -> tuple[bool, int]:
        stop = asyncio.Event()
        ticker = asyncio.create_task(ticking(stop))
        await asyncio.sleep(0.02)
        before = len(ticks)
        result = await driver.run(_slow_flow(0.5))
        during = len(ticks) - before
        stop.set()
        await ticker
        return result, during

    result, during = asyncio.run(both())
    assert result
    assert during >= 10  # the loop kept turning while the step slept (on the loop it would be 0 or 1)


class _SlowOnLargeEvents:
    """A stream translation that holds its thread on every event with a lot of text, as parsing an 8 MB
    delta would; a small event costs nothing."""

    settled = False

    def on_event(self, event: JSON) -> list[str]:
        if text_size(event) >= LARGE_TEXT:
            time.sleep(0.5)
        return ["event"]

    def on_end(self) -> list[str]:
        return ["end"]

    def cut_off(self) -> None:
        pass


def test_the_async_driver_translates_a_large_stream_event_off_the_event_loop() -> None:
    big = {"choices": [{"index": 0, "delta": {"content": "[" * LARGE_TEXT}}]}
    small = {"choices": [{"index": 0, "delta": {"content": "["}}]}
    ticks: list[float] = []

    async def ticking(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def both(url: str) -> tuple[list[str], int]:
        driver = SERVERS.get(url).async_driver(LlamafileSettings.resolve(api_base=url), "m")
        stop = asyncio.Event()
        ticker = asyncio.create_task(ticking(stop))
        await asyncio.sleep(0.02)
        before = len(ticks)
        out = [
            c
            async for c in driver.astream(HttpCall("POST", "/v1/chat/completions", {}), _SlowOnLargeEvents())
        ]
        during = len(ticks) - before
        stop.set()
        await ticker
        return out, during

    with serving(lambda request: event_stream([small, big, small])) as url:
        out, during = asyncio.run(both(url))
    assert out == ["event", "event", "event", "end"]
    assert during >= 10  # the loop kept turning while the large event was translated


def test_an_agents_second_turn_reuses_the_compiled_constraint_and_instructions() -> None:
    compiled = CompiledTools()
    tools = [{"type": "function", "function": {"name": "probe", "parameters": nested_optional(12)}}]

    def turn(messages: list[dict[str, Any]], max_tokens: int = 512) -> ChatRequest:
        params = {"tools": tools, "tool_choice": "required", "max_tokens": max_tokens}
        return build_chat_request(
            "m",
            Conversation.of(messages),
            params,
            RequestProfile(strategy=TemplateName.CHATML, constraint="grammar", compiled=compiled),
        )

    first = turn([{"role": "user", "content": "hi"}])
    second = turn(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": "y"},
        ]
    )
    assert second.payload["grammar"] is first.payload["grammar"]
    assert second.messages[0]["content"] is first.messages[0]["content"]
    roomier = turn([{"role": "user", "content": "hi"}], max_tokens=4096)  # another budget: compiled anew
    assert roomier.payload["grammar"] != first.payload["grammar"]
