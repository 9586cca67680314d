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

__all__ = ["SIGNATURE_HEADER", "signature_instructions", "signature_line", "type_text"]

SIGNATURE_HEADER = "You can call these tools (TypeScript-like signatures; ? marks an optional argument):"
_MAX_DEPTH = 4  # nested $ref chains beyond this are written as `object`: the schema still constrains


def _defs(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    found = schema.get("$defs") or schema.get("definitions") or {}
    return found if isinstance(found, Mapping) else {}


def _one_line(text: object) -> str:
    return " ".join(str(text or "").split())


def type_text(schema: object, defs: Mapping[str, Any] | None = None, depth: int = 0) -> str:
    """A JSON schema as a short type: `"a"|"b"`, `integer`, `string[]`, `{k: T, o?: T}`."""
    if not isinstance(schema, Mapping):
        return "any"
    defs = _defs(schema) if defs is None else defs
    if depth > _MAX_DEPTH:
        return "object" if "properties" in schema or "$ref" in schema else "any"
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
        return type_text(target, defs, depth + 1) if target is not None else "object"
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if isinstance(schema.get("enum"), list):
        return "|".join(json.dumps(value, ensure_ascii=False) for value in schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            joiner = " & " if key == "allOf" else " | "
            return joiner.join(type_text(option, defs, depth + 1) for option in options)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(type_text({**schema, "type": k}, defs, depth) for k in kind)
    if kind == "array":
        item = type_text(schema.get("items"), defs, depth + 1)
        return f"({item})[]" if "|" in item or "&" in item else f"{item}[]"
    if kind == "object" or "properties" in schema:
        return "{" + ", ".join(_members(schema, defs, depth + 1)) + "}"
    if kind in ("string", "integer", "number", "boolean", "null"):
        return str(kind)
    return "any"


def _members(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> list[str]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = schema.get("required")
    needed = set(required) if isinstance(required, list) else set()
    return [
        f"{name}{'' if name in needed else '?'}: {type_text(sub, defs, depth)}"
        for name, sub in properties.items()
    ]


def signature_line(function: Mapping[str, Any]) -> str:
    """`name(arg: type, ...) // description. arg: its description`: one tool's function spec on one
    line. Argument descriptions are kept: they carry units, formats and meanings a type cannot."""
    parameters = function.get("parameters")
    parameters = parameters if isinstance(parameters, Mapping) else {}
    defs = _defs(parameters)
    line = f"{function.get('name', '')}({', '.join(_members(parameters, defs, 0))})"
    properties = parameters.get("properties")
    argument_docs = [
        f"{name}: {_one_line(sub['description'])}"
        for name, sub in (properties.items() if isinstance(properties, Mapping) else ())
        if isinstance(sub, Mapping) and sub.get("description")
    ]
    description = " ".join([_one_line(function.get("description")), *argument_docs]).strip()
    return f"{line} // {description}" if description else line


def signature_instructions(functions: Sequence[Mapping[str, Any]], footer: str) -> str:
    """The instruction block: header, one signature per tool, then how to answer (`footer`)."""
    return "\n".join([SIGNATURE_HEADER, *(signature_line(f) for f in functions), footer])
