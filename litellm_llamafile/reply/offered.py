"""The offered tools as the reply parser needs them: their names, and the JSON types each parameter's schema
allows, so a value written as tag text (Qwen3-Coder XML, GLM `<arg_value>`, DeepSeek DSML, Kimi K3) is
typed by the tool's schema and not guessed: a `string` parameter keeps its exact text, `"3"` included.

`Offered.of` accepts what `parse_tool_calls` always took (tool names, OpenAI tool dicts, bare function
dicts) and an `Offered`. A tool given by name only has no schema: its values are typed as the family's
reference does for an undeclared parameter, or guessed (JSON when the text is JSON) where it has none.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Types = frozenset[str]  # JSON schema type names; "integer" is folded into "number"
JSON_TYPES: Types = frozenset({"string", "number", "boolean", "null", "object", "array"})
MAX_LITERAL_CHARS = 100_000  # a Python-spelled value longer than this is not decoded (ast cost bound)
_SCHEMA_DEPTH = 8  # anyOf nested deeper than this says nothing more about a parameter's type


@dataclass(frozen=True, slots=True)
class Offered:
    """Tool name -> parameter name -> the JSON types its schema allows (empty: the schema says nothing).
    A tool mapped to None was offered by name only."""

    tools: Mapping[str, Mapping[str, Types] | None] = field(default_factory=dict)

    @classmethod
    def of(cls, tools: Iterable[Any] | Offered | None) -> Offered:
        if isinstance(tools, Offered):
            return tools
        found: dict[str, Mapping[str, Types] | None] = {}
        for tool in tools or ():
            if isinstance(tool, str):
                found.setdefault(tool, None)
            elif isinstance(tool, Mapping):
                function = tool.get("function")
                spec = function if isinstance(function, Mapping) else tool
                name = spec.get("name")
                if isinstance(name, str):
                    found[name] = _parameter_types(spec.get("parameters"))
        return cls(found)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.tools)

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __bool__(self) -> bool:
        return bool(self.tools)

    def types(self, tool: str, parameter: str) -> Types | None:
        """The types `parameter` of `tool` allows; None when the tool has no schema or the schema does not
        declare the parameter."""
        parameters = self.tools.get(tool)
        if parameters is None:
            return None
        return parameters.get(parameter)

    def declares(self, tool: str) -> bool:
        """Whether the tool came with a parameter schema (not by name only)."""
        return self.tools.get(tool) is not None


def _parameter_types(parameters: object) -> Mapping[str, Types]:
    if not isinstance(parameters, Mapping):
        return {}
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    return {str(key): schema_types(value) for key, value in properties.items()}


def schema_types(schema: object, depth: int = 0) -> Types:
    """The JSON types a (sub)schema allows, from `type`, `anyOf`/`oneOf`, `enum` and `const`; empty when it
    says nothing checkable (a `$ref`, `{}`)."""
    if not isinstance(schema, Mapping) or depth > _SCHEMA_DEPTH:
        return frozenset()
    found: set[str] = set()
    declared = schema.get("type")
    for name in declared if isinstance(declared, list) else [declared]:
        if isinstance(name, str):
            found.add("number" if name == "integer" else name)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            for option in options:
                found |= schema_types(option, depth + 1)
    values = schema.get("enum") if isinstance(schema.get("enum"), list) else None
    if "const" in schema:
        values = [schema["const"]]
    for value in values or ():
        found.add(_type_of(value))
    if schema.get("nullable") is True:
        found.add("null")
    return frozenset(found & JSON_TYPES)


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# -- values written as text -------------------------------------------------------------------------

_PYTHON_CONSTANTS: dict[str, object] = {"True": True, "False": False, "None": None}


def json_value(text: str) -> tuple[bool, object]:
    """(ok, value) of a JSON text; NaN, infinities and deep nesting count as invalid instead of raising."""
    try:
        value = json.loads(text, parse_constant=_reject)
    except (ValueError, RecursionError):
        return False, None
    return (True, value) if _json_safe(value) else (False, None)


def decoded(text: str, *, python: bool = True) -> tuple[bool, object]:
    """(ok, value) of a value spelled in JSON or, with `python`, in Python (`True`, `None`, `{'a': 1}`)."""
    stripped = text.strip()
    if not stripped:
        return False, None
    ok, value = json_value(stripped)
    if ok or not python:
        return ok, value
    if stripped in _PYTHON_CONSTANTS:
        return True, _PYTHON_CONSTANTS[stripped]
    if len(stripped) > MAX_LITERAL_CHARS or stripped[0] not in "{[(-0123456789.":
        return False, None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, tuple):
        value = list(value)
    return (True, value) if _json_safe(value) else (False, None)


def _reject(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


def _json_safe(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def typed_value(text: str, types: Types | None, *, untyped: str) -> object:
    """A parameter value written as text, typed by the schema's `types`.

    Only `string`: the exact text. String among others: decoded when it decodes to one of the other types
    (a nullable string's `null`, a union's `{"a": 1}`), else the text. No string: decoded (JSON or Python
    spelling), else the text, so nothing is lost. No types known: by `untyped`, the family's rule for an
    undeclared parameter: "string" keeps the text, "value" decodes JSON and Python spellings, "json"
    decodes JSON only (the guess for a tool offered by name only)."""
    if not types:
        if untyped == "string":
            return text
        ok, value = decoded(text, python=untyped == "value")
        return value if ok else text
    if types == {"string"}:
        return text
    ok, value = decoded(text)
    if ok and _type_of(value) in types and _type_of(value) != "string":
        return value
    return text


def holds_text(types: Types | None, *, untyped: str) -> bool:
    """Whether a value of these types is the exact text whatever it says, so it can stream as it arrives
    (anything else is decoded once complete)."""
    if not types:
        return untyped == "string"
    return types == {"string"}
