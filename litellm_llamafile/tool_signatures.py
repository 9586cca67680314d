"""Tools listed as TypeScript-like signatures: the compact form of the tool instructions.

`search(query: string, limit?: integer) // Search the web. query: what to look for` costs about half
the tokens of the same tool as a JSON schema line (bench/tool_instructions.py), and several model
families (functionary, gpt-oss) are trained on this shape. The footer, which says how to answer, is the
same as the JSON form's, so the reply parser and the forced-call constraint are unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .schemas import SchemaError, type_names
from .settings import DEFAULT_LIMITS

__all__ = ["SIGNATURE_HEADER", "signature_instructions", "signature_line", "type_text"]

SIGNATURE_HEADER = "You can call these tools (TypeScript-like signatures; ? marks an optional argument):"
_MAX_DEPTH = 4  # nested $ref chains beyond this are written as `object`: the schema still constrains


def _defs(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    found = schema.get("$defs") or schema.get("definitions") or {}
    return found if isinstance(found, Mapping) else {}


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


class _TypeWriter:
    """Writes types within a budget of characters: references may fan a small schema out into a huge
    text, so the writer stops (SchemaError) once the text it wrote passes `budget`."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.left = budget

    def spend(self, text: str) -> str:
        self.left -= len(text) + 2  # + a separator
        if self.left < 0:
            raise SchemaError(
                f"the tool instructions would be longer than {self.budget} bytes "
                "(limit tool_prompt_max_bytes)"
            )
        return text

    def text(self, schema: object, defs: Mapping[str, Any], depth: int) -> str:
        if not isinstance(schema, Mapping):
            return self.spend("any")
        if depth > _MAX_DEPTH:
            return self.spend("object" if "properties" in schema or "$ref" in schema else "any")
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
            return self.text(target, defs, depth + 1) if target is not None else self.spend("object")
        if "const" in schema:
            return self.spend(json.dumps(schema["const"], ensure_ascii=False))
        if isinstance(schema.get("enum"), list):
            return "|".join(self.spend(json.dumps(v, ensure_ascii=False)) for v in schema["enum"])
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                joiner = " & " if key == "allOf" else " | "
                return joiner.join(self.text(option, defs, depth + 1) for option in options)
        kinds = type_names(schema)
        if len(kinds) > 1:  # each type reads only its own keywords: no subschema is written twice
            return " | ".join(self.text({**schema, "type": k}, defs, depth) for k in kinds)
        kind = kinds[0] if kinds else None
        if kind == "array":
            item = self.text(schema.get("items"), defs, depth + 1)
            return f"({item})[]" if "|" in item or "&" in item else f"{item}[]"
        if kind == "object" or "properties" in schema:
            return "{" + ", ".join(self.members(schema, defs, depth + 1)) + "}"
        return self.spend(kind if kind in ("string", "integer", "number", "boolean", "null") else "any")

    def members(self, schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> list[str]:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return []
        required = schema.get("required")
        needed = set(required) if isinstance(required, list) else set()
        return [
            f"{self.spend(str(name))}{'' if name in needed else '?'}: {self.text(sub, defs, depth)}"
            for name, sub in properties.items()
        ]

    def line(self, function: Mapping[str, Any]) -> str:
        parameters = function.get("parameters")
        parameters = parameters if isinstance(parameters, Mapping) else {}
        defs = _defs(parameters)
        line = f"{self.spend(str(function.get('name', '')))}({', '.join(self.members(parameters, defs, 0))})"
        properties = parameters.get("properties")
        argument_docs = [
            f"{name}: {_one_line(sub['description'])}"
            for name, sub in (properties.items() if isinstance(properties, Mapping) else ())
            if isinstance(sub, Mapping) and sub.get("description")
        ]
        description = self.spend(" ".join([_one_line(function.get("description")), *argument_docs]).strip())
        return f"{line} // {description}" if description else line


def type_text(schema: object, defs: Mapping[str, Any] | None = None, depth: int = 0) -> str:
    """A JSON schema as a short type: `"a"|"b"`, `integer`, `string[]`, `{k: T, o?: T}`."""
    if defs is None:
        defs = _defs(schema) if isinstance(schema, Mapping) else {}
    return _TypeWriter(DEFAULT_LIMITS.prompt_bytes).text(schema, defs, depth)


def signature_line(function: Mapping[str, Any]) -> str:
    """`name(arg: type, ...) // description. arg: its description`: one tool's function spec on one
    line. Argument descriptions are kept: they carry units, formats and meanings a type cannot."""
    return _TypeWriter(DEFAULT_LIMITS.prompt_bytes).line(function)


def signature_instructions(
    functions: Sequence[Mapping[str, Any]], footer: str, max_bytes: int = DEFAULT_LIMITS.prompt_bytes
) -> str:
    """The instruction block: header, one signature per tool, then how to answer (`footer`). Raises
    SchemaError naming the tool at which the text passes `max_bytes`."""
    writer = _TypeWriter(max_bytes)
    lines = [SIGNATURE_HEADER]
    for index, function in enumerate(functions):
        try:
            lines.append(writer.line(function))
        except SchemaError as error:
            raise SchemaError(f"tools[{index}] ({function.get('name')!r}): {error}") from None
    return "\n".join([*lines, footer])
