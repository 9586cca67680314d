"""A forced call is as strict as the tool that receives it (issue 28): an object schema that lists its
members admits exactly those keys, so a no-parameter tool gets `{}` and a two-member tool never a
third; `additionalProperties` (true or a schema) and free-form objects stay open; `function.strict`
closes and requires everything; pattern-named keys are refused. The same on every path: the GBNF the
adapter sends llama-server and classic llamafile, the JSON schema for llamafile's newer server, streams.

The grammar tests read each constraint's language by sampling it (tests/support/gbnf.py); the server
tests run litellm.completion against real SmolLM2 servers under ChatML and a Mistral-style template,
replayed from cassettes by default (`pytest -m live -k strict_calls` runs them for real).
"""

from __future__ import annotations

import json
from typing import Any

import litellm
import pytest

from litellm_llamafile.settings import TemplateName
from litellm_llamafile.transformation import build_chat_request

from .support.data import GREEDY
from .support.gbnf import samples
from .support.servers import SentRequest, Servers


def tool(name: str, parameters: dict[str, Any] | None, *, strict: bool = False) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "description": f"The {name} tool."}
    if parameters is not None:
        function["parameters"] = parameters
    if strict:
        function["strict"] = True
    return {"type": "function", "function": function}


NO_ARGUMENTS = tool("magic_function_no_args", {"type": "object", "properties": {}})
TWO_MEMBERS = tool(
    "book_table",
    {
        "type": "object",
        "properties": {"restaurant": {"type": "string"}, "people": {"type": "integer"}},
        "required": ["restaurant"],
    },
)
OPEN = tool(
    "tag_photo",
    {"type": "object", "properties": {"photo": {"type": "string"}}, "additionalProperties": True},
)
FREE_FORM = tool("set_labels", {"type": "object", "properties": {"labels": {"type": "object"}}})


def constraint(tools: list[dict[str, Any]], *, field: str = "grammar", **params: Any) -> Any:
    body = {"tools": tools, "tool_choice": "required", "max_tokens": 200, **params}
    payload = build_chat_request(
        "m", [{"role": "user", "content": "go"}], body, TemplateName.CHATML, constraint=field
    ).payload  # type: ignore[arg-type]
    return payload["grammar"] if field == "grammar" else payload["response_format"]["json_schema"]["schema"]


def argument_keys(grammar: str, count: int = 200) -> list[set[str]]:
    return [set(json.loads(text)["arguments"]) for text in samples(grammar, count, seed=11)]


# -- the language of the constraint ----------------------------------------------------------------------


def test_a_no_parameter_tool_is_called_with_an_empty_object() -> None:
    assert all(keys == set() for keys in argument_keys(constraint([NO_ARGUMENTS])))


def test_a_tool_that_declares_no_parameters_takes_none() -> None:
    # OpenAI: a function without `parameters` takes no arguments.
    assert all(keys == set() for keys in argument_keys(constraint([tool("f", None)])))


def test_free_form_parameters_stay_open() -> None:
    assert any(keys for keys in argument_keys(constraint([tool("f", {"type": "object"})])))


def test_a_call_never_carries_a_member_its_tool_does_not_list() -> None:
    keys = argument_keys(constraint([TWO_MEMBERS]))
    assert all("restaurant" in k and k <= {"restaurant", "people"} for k in keys)
    assert any(k == {"restaurant", "people"} for k in keys)


def test_nested_objects_are_closed_too() -> None:
    nested = tool(
        "move",
        {
            "type": "object",
            "properties": {"to": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            "required": ["to"],
        },
    )
    texts = samples(constraint([nested]), 200, seed=3)
    assert all(set(json.loads(t)["arguments"]["to"]) <= {"x"} for t in texts)


def test_additional_properties_true_or_a_schema_admits_keys_of_the_models_choosing() -> None:
    keys = argument_keys(constraint([OPEN]))
    assert any(k - {"photo"} for k in keys)
    typed = tool(
        "score",
        {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": {"type": "integer"},
        },
    )
    for text in samples(constraint([typed]), 200, seed=4):
        arguments = json.loads(text)["arguments"]
        assert all(isinstance(v, int) for k, v in arguments.items() if k != "name")


def test_a_free_form_member_stays_open() -> None:
    texts = samples(constraint([FREE_FORM]), 200, seed=5)
    assert any(json.loads(t)["arguments"].get("labels") for t in texts)


def test_strict_functions_close_every_object_and_require_every_member() -> None:
    strict = tool(
        "move",
        {
            "type": "object",
            "properties": {"to": {"type": "object", "properties": {"x": {"type": "integer"}}}, "fast": {}},
        },
        strict=True,
    )
    for text in samples(constraint([strict]), 100, seed=6):
        arguments = json.loads(text)["arguments"]
        assert set(arguments) == {"to", "fast"} and set(arguments["to"]) == {"x"}


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "object", "patternProperties": {"^x-": {"type": "string"}}},
        {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z]+$"},
            "additionalProperties": {"type": "string"},
        },
    ],
)
def test_keys_named_by_a_pattern_are_refused_not_opened(parameters: dict[str, Any]) -> None:
    with pytest.raises(litellm.BadRequestError, match="not supported in a call's constraint"):
        constraint([tool("f", parameters)])


def test_the_json_schema_path_closes_the_same_objects() -> None:
    schema = constraint([NO_ARGUMENTS, TWO_MEMBERS, OPEN], field="json_schema")
    arguments = {v["properties"]["name"]["const"]: v["properties"]["arguments"] for v in schema["anyOf"]}
    assert arguments["magic_function_no_args"]["additionalProperties"] is False
    assert arguments["book_table"]["additionalProperties"] is False
    assert arguments["tag_photo"]["additionalProperties"] is True


def test_auto_with_constrain_auto_and_the_thought_mode_close_the_call_too() -> None:
    for options in ({"constrain_auto": True}, {"constrain_auto": "thought"}):
        payload = build_chat_request(
            "m",
            [{"role": "user", "content": "go"}],
            {"tools": [NO_ARGUMENTS], "tool_choice": "auto"},
            TemplateName.CHATML,
            constraint="grammar",
            **options,  # type: ignore[arg-type]
        ).payload
        calls = [t[t.index("{") :] for t in samples(payload["grammar"], 200, seed=7) if '"name"' in t]
        assert calls and all(json.loads(c)["arguments"] == {} for c in calls)


# -- on real servers ---------------------------------------------------------------------------------------


def forced(
    servers: Servers,
    role: str,
    tools: list[dict[str, Any]],
    prompt: str,
    *,
    stream: bool,
    cut_ok: bool = False,
) -> Any:
    response = litellm.completion(
        model="llamafile/smollm2",
        messages=[{"role": "user", "content": prompt}],
        tools=tools,
        tool_choice="required",
        max_tokens=96,
        api_base=servers.url(role),
        stream=stream,
        **GREEDY,
    )
    if stream:
        response = litellm.stream_chunk_builder(list(response))
    calls = response.choices[0].message.tool_calls or []
    # An open object lets a small model write extra keys until max_tokens: a cut call is no call.
    assert calls or (cut_ok and response.choices[0].finish_reason == "length"), response
    return [(c.function.name, json.loads(c.function.arguments)) for c in calls]


@pytest.mark.vcr
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_a_forced_call_to_a_no_parameter_tool_carries_no_arguments(
    servers: Servers, sent: list[SentRequest], role: str, stream: bool
) -> None:
    calls = forced(servers, role, [NO_ARGUMENTS], "Call the magic function.", stream=stream)
    assert calls == [("magic_function_no_args", {})]


@pytest.mark.vcr
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_a_forced_call_never_carries_a_third_member(servers: Servers, role: str, stream: bool) -> None:
    prompt = "Book a table at Luigi's for 4 people tonight, window seat, vegetarian menu, pay by card."
    (name, arguments), *_ = forced(servers, role, [TWO_MEMBERS], prompt, stream=stream)
    assert name == "book_table" and "restaurant" in arguments
    assert set(arguments) <= {"restaurant", "people"}


@pytest.mark.vcr
@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_open_objects_reach_the_server_open(servers: Servers, sent: list[SentRequest], role: str) -> None:
    prompt = "Tag photo beach.jpg with place=Nice, year=2024 and labels mood=happy."
    for name, arguments in forced(servers, role, [OPEN, FREE_FORM], prompt, stream=False, cut_ok=True):
        assert name in ("tag_photo", "set_labels") and isinstance(arguments, dict)
    grammar = next(r.body["grammar"] for r in sent if r.path == "/v1/chat/completions")
    sampled = [json.loads(t) for t in samples(grammar, 300, seed=8)]
    assert any(c["name"] == "tag_photo" and set(c["arguments"]) - {"photo"} for c in sampled)
    assert any(c["name"] == "set_labels" and c["arguments"].get("labels") for c in sampled)
