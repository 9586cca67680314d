"""Whether a call parsed from an unconstrained reply is one its tool accepts: the tool was offered and its
JSON schema validates the arguments. Pure. The schema is the caller's own, checked with `jsonschema`
(a dependency of LiteLLM's); a schema that cannot be checked (invalid itself) accepts every call, as the
caller's tool would see the same arguments either way."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
import jsonschema.exceptions

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
