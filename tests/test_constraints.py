"""Forced-call constraints for schemas as pydantic and agent SDKs emit them, and the two mixed modes
(a thought then a call; a call or a structured answer).

Grammars are checked by their language: texts sampled from a grammar (tests/support/gbnf.py) must be
what it promises, validated by jsonschema and by pydantic itself. The live tier
(tests/test_constraints_live.py) proves llama-server accepts the same grammars and schemas, and that
SmolLM2 under them writes valid calls.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_llamafile.prompt.bounds import worst_case_chars
from litellm_llamafile.prompt.constraints import answer_constraint, call_or_answer_schema, call_schema
from litellm_llamafile.prompt.grammar import (
    call_or_answer_grammar,
    grammar_for_schema,
    thought_then_call_grammar,
)
from litellm_llamafile.prompt.schemas import answer_schema, resolved
from litellm_llamafile.prompt.tools import ToolChoice
from litellm_llamafile.reply.parsing import parse_tool_calls

from .support.gbnf import samples
from .support.schemas import MODELS, TOOLS, Location, Order, tool_for, valid_arguments


def refs_in(schema: object) -> list[str]:
    text = json.dumps(schema)
    return [key for key in ("$ref", "$defs", "definitions", "allOf") if f'"{key}"' in text]


def valid_call(call: object, names: set[str]) -> bool:
    return (
        isinstance(call, dict)
        and set(call) == {"name", "arguments"}
        and call["name"] in names
        and valid_arguments(call["name"], call["arguments"])
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_forced_call_schema_for_a_pydantic_model_is_self_contained(name: str) -> None:
    schema = call_schema([tool_for(name, MODELS[name])], ToolChoice("required"))
    # nesting the parameters under `arguments` cannot break a reference: there are none left
    assert "$defs" in json.dumps(TOOLS) and refs_in(schema) == []


@pytest.mark.parametrize("name", list(MODELS))
def test_every_call_the_grammar_allows_is_valid_for_the_pydantic_model(name: str) -> None:
    grammar = grammar_for_schema(call_schema([tool_for(name, MODELS[name])], ToolChoice("required")))
    texts = samples(grammar, 60, seed=len(name))
    assert all(valid_call(json.loads(text), {name}) for text in texts)


def test_every_call_among_several_pydantic_tools_is_valid_and_parsed() -> None:
    grammar = grammar_for_schema(call_schema(TOOLS, ToolChoice("required"), parallel=True))
    for text in samples(grammar, 50, seed=1):
        calls = json.loads(text)
        assert isinstance(calls, list) and calls and all(valid_call(c, set(MODELS)) for c in calls)
        parsed = parse_tool_calls(text, TOOLS)
        assert [c.name for c in parsed.tool_calls] == [c["name"] for c in calls] and parsed.content is None


def test_recursive_model_is_expanded_to_a_bounded_depth_then_pruned() -> None:
    call = call_schema([tool_for("make_tree", MODELS["make_tree"])], ToolChoice("required"))
    arguments = call["properties"]["arguments"]
    depth, node = 0, arguments
    while "items" in node["properties"]["children"]:
        node, depth = node["properties"]["children"]["items"], depth + 1
    assert depth == 2 and node["properties"]["children"]["maxItems"] == 0  # the leaf has no children


def test_a_reference_cycle_with_no_finite_value_becomes_a_generic_value() -> None:
    loop = {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "required": ["a"]}
    endless = {"$defs": {"A": loop}}
    assert resolved({**endless, "$ref": "#/$defs/A"}) == {}


@pytest.mark.parametrize("budget", [600, 1000])
def test_pydantic_calls_fit_the_budget(budget: int) -> None:
    for tool in TOOLS:
        schema = call_schema([tool], ToolChoice("required"), budget=budget)
        assert worst_case_chars(schema) <= budget, tool["function"]["name"]


@pytest.mark.parametrize("unlimited", [-1, 0])
def test_max_tokens_unlimited_does_not_squeeze_the_schema(unlimited: int) -> None:
    writer = tool_for("place_order", Order)
    assert call_schema([writer], ToolChoice("required"), budget=unlimited) == call_schema(
        [writer], ToolChoice("required")
    )
    note = call_schema([writer], ToolChoice("required"), budget=unlimited)["properties"]["arguments"]
    assert note["properties"]["note"]["anyOf"][0]["maxLength"] == 200


def test_schemas_without_references_are_sent_unchanged() -> None:
    plain = {"type": "object", "properties": {"q": {"type": "string"}, "n": {"type": "integer"}}}
    assert resolved(plain) is plain


def test_all_of_is_merged_and_nullable_allows_null() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}, "required": ["a"]},
            {
                "properties": {"a": {"maximum": 5}, "b": {"type": "string", "nullable": True}},
                "required": ["b"],
            },
        ]
    }
    for text in samples(grammar_for_schema(schema), 100, seed=3):
        value = json.loads(text)
        jsonschema.validate(value, {"allOf": schema["allOf"][:1]})
        assert 0 <= value["a"] <= 5 and (value["b"] is None or isinstance(value["b"], str))


def test_additional_properties_false_without_members_is_only_the_empty_object() -> None:
    grammar = grammar_for_schema({"type": "object", "additionalProperties": False})
    assert all(json.loads(t) == {} for t in samples(grammar, 20))


def test_typed_extra_keys_follow_their_schema_and_are_bounded() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 3}}
    values = [json.loads(t) for t in samples(grammar_for_schema(schema), 100, seed=5)]
    assert all(set(v.values()) <= {1, 2, 3} and len(v) <= 16 for v in values)
    assert any(v for v in values)  # extra keys are allowed, not only {}


@settings(max_examples=30, deadline=None)
@given(
    low=st.one_of(st.none(), st.integers(-(10**6), 10**6)),
    span=st.one_of(st.none(), st.integers(0, 10**6)),
    kind=st.sampled_from(["integer", "number"]),
    exclusive=st.booleans(),
)
def test_numbers_stay_within_their_bounds(
    low: int | None, span: int | None, kind: str, exclusive: bool
) -> None:
    schema: dict[str, Any] = {"type": kind}
    high = None if span is None else (low or 0) + span + 2  # an integer always fits
    if low is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = low
    if high is not None:
        schema["exclusiveMaximum" if exclusive else "maximum"] = high
    for text in samples(grammar_for_schema(schema), 30, seed=span or 0):
        jsonschema.validate(json.loads(text), schema)


@pytest.mark.parametrize("parallel", [False, True])
def test_thought_then_call_parses_into_the_thought_and_a_valid_call(parallel: bool) -> None:
    call = call_schema(TOOLS, ToolChoice("auto"), parallel=parallel)
    grammar = thought_then_call_grammar(call, max_thought_chars=80)
    for text in samples(grammar, 60, seed=7):
        reply = parse_tool_calls(text, TOOLS)
        assert reply.content and len(reply.content) <= 80 and reply.content[0] not in "{[ \n"
        assert reply.tool_calls
        assert all(valid_arguments(c.name, json.loads(c.arguments)) for c in reply.tool_calls)
        assert len(reply.tool_calls) == 1 or parallel


ANSWER = {
    "type": "json_schema",
    "json_schema": {"name": "forecast", "schema": {**Location.model_json_schema(), "title": "Forecast"}},
}


@pytest.mark.parametrize("response_format", [ANSWER, {"type": "json_object"}])
def test_call_or_answer_is_one_or_the_other_and_the_parser_tells_them_apart(
    response_format: dict[str, Any],
) -> None:
    answer = answer_schema(response_format)
    assert answer is not None
    call = call_schema(TOOLS, ToolChoice("auto"))
    grammar = call_or_answer_grammar(call, answer_constraint(answer))
    kinds = set()
    for text in samples(grammar, 60, seed=9):
        reply = parse_tool_calls(text, TOOLS)
        if reply.tool_calls:
            assert reply.content is None and valid_call(json.loads(text), set(MODELS))
            kinds.add("call")
        else:
            assert reply.content == text
            jsonschema.validate(json.loads(text), answer)
            kinds.add("answer")
    assert kinds == {"call", "answer"}


def test_call_or_answer_schema_for_servers_that_take_a_schema() -> None:
    answer = answer_constraint(answer_schema(ANSWER) or {})
    schema = call_or_answer_schema(call_schema(TOOLS, ToolChoice("auto")), answer)
    assert refs_in(schema) == []
    jsonschema.validate({"city": "Rome"}, schema)
    jsonschema.validate({"name": "make_tree", "arguments": {"name": "root"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "make_tree", "arguments": {}}, schema)


def test_answer_strings_are_bounded_loosely_and_fit_a_budget() -> None:
    answer = answer_schema(ANSWER) or {}
    loose: Any = answer_constraint(answer)
    assert loose["properties"]["city"]["maxLength"] == 2000
    assert worst_case_chars(answer_constraint(answer, budget=300)) <= 300
    assert answer_constraint(answer, budget=-1) == loose
