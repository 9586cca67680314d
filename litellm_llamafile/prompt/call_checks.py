"""Whether a call parsed from an unconstrained reply is one its tool accepts: the tool was offered and its
JSON schema validates the arguments. Pure. The schema is the caller's own, checked with `jsonschema`
(a dependency of LiteLLM's); a schema that cannot be checked (invalid itself) accepts every call, as the
caller's tool would see the same arguments either way."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import jsonschema
import jsonschema.exceptions

from ..reply.parsing import ParsedReply
from .tools import function_spec


def call_problem(name: str, arguments: str, tools: Sequence[Mapping[str, Any]]) -> str | None:
    """None when the tool `name` is offered and its parameters' schema accepts `arguments` (JSON text),
    else what is wrong, in a few words."""
    spec = next((function_spec(t) for t in tools if function_spec(t).get("name") == name), None)
    if spec is None:
        return f"no tool named {name!r} was offered"
    try:
        value = json.loads(arguments or "{}")
    except ValueError as broken:
        return f"the arguments are not JSON ({broken})"
    schema = spec.get("parameters")
    if not isinstance(schema, Mapping):
        return None if isinstance(value, dict) else "the arguments are not an object"
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
        found = jsonschema.exceptions.best_match(validator(schema).iter_errors(value))
    except jsonschema.exceptions.SchemaError:
        return None
    if found is None:
        return None
    where = "/".join(str(p) for p in found.absolute_path)
    return f"{where + ': ' if where else ''}{found.message}"[:300]


def invalid_calls(reply: ParsedReply, tools: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The calls of `reply` their tools' schemas reject: call id -> what is wrong."""
    found = {}
    for call in reply.tool_calls:
        problem = call_problem(call.name, call.arguments, tools)
        if problem is not None:
            found[call.id] = problem
    return found


def as_text(reply: ParsedReply, rejected: Mapping[str, str], *, follows_text: bool = False) -> ParsedReply:
    """`reply` with the `rejected` calls given back as text, after its prose: the caller gets what the
    model wrote rather than a call its tool would refuse. `follows_text`: prose of this reply went out
    before `reply.content` (a stream), so the text starts on a new line as it does in the whole reply."""
    if not rejected:
        return reply
    kept = tuple(c for c in reply.tool_calls if c.id not in rejected)
    written = [
        json.dumps({"name": c.name, "arguments": _loaded(c.arguments)}, ensure_ascii=False)
        for c in reply.tool_calls
        if c.id in rejected
    ]
    calls = "\n".join(written)
    content = f"{reply.content}\n{calls}" if reply.content else f"\n{calls}" if follows_text else calls
    return replace(reply, content=content, tool_calls=kept)


def _loaded(arguments: str) -> object:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments
