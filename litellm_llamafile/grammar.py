"""JSON schema -> GBNF, for the servers and modes that need a grammar instead of a JSON schema:
classic llamafile servers (which keep `grammar` but drop `response_format`), and the opt-in
"prose or a valid call" constraint for tool_choice="auto", which no JSON schema can express.

Covers what tool parameters use: objects (properties, required), strings (maxLength, enum, const),
integers, numbers, booleans, null, arrays (items, minItems, maxItems), enum/const of any JSON value,
anyOf/oneOf, and nesting. Anything else becomes a generic JSON value. Output is bounded: strings and
arrays without limits get the same bounds as the JSON-schema constraint (tools.bounded).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .tools import MAX_ARRAY_ITEMS, MAX_STRING_LENGTH, bounded

MAX_LISTED_INTEGERS = 256

_BASE_RULES = {
    # At most one space between JSON tokens: a small model under a grammar otherwise pads with newlines
    # and indentation until max_tokens, and a cut-off call is no call.
    "ws": r'" "?',
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "integer": r'"-"? ([0-9] | [1-9] [0-9]{0,15})',
    "number": r'"-"? ([0-9] | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": r'"true" | "false"',
    "null": r'"null"',
    "string": f'"\\"" char{{0,{MAX_STRING_LENGTH}}} "\\""',
    "value": "object | array | string | number | boolean | null",
    "object": r'"{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value ){0,31} )? ws "}"',
    "array": f'"[" ws ( value ( ws "," ws value ){{0,{MAX_ARRAY_ITEMS - 1}}} )? ws "]"',
}


def literal(text: str) -> str:
    """A GBNF string literal matching `text` exactly."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    escaped = escaped.replace("\t", "\\t")
    return f'"{escaped}"'


class _Builder:
    def __init__(self) -> None:
        self.rules: dict[str, str] = dict(_BASE_RULES)
        self._count = 0

    def rule(self, body: str, hint: str = "r") -> str:
        for name, existing in self.rules.items():
            if existing == body:
                return name
        self._count += 1
        name = f"{re.sub(r'[^a-z0-9]+', '-', hint.lower()).strip('-') or 'r'}-{self._count}"
        self.rules[name] = body
        return name

    def schema(self, schema: object, hint: str = "v") -> str:
        """The rule name (or inline expression) matching `schema`."""
        if not isinstance(schema, Mapping):
            return "value"
        if "const" in schema:
            return literal(json.dumps(schema["const"], ensure_ascii=False))
        if isinstance(schema.get("enum"), list):
            options = " | ".join(literal(json.dumps(v, ensure_ascii=False)) for v in schema["enum"])
            return self.rule(options, hint)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                options = " | ".join(self.schema(s, hint) for s in schema[key])
                return self.rule(options, hint)
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.rule(" | ".join(self.schema({**schema, "type": k}, hint) for k in kind), hint)
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, hint)
        if kind == "array":
            return self._array(schema, hint)
        if kind == "string":
            limit = schema.get("maxLength", MAX_STRING_LENGTH)
            low = schema.get("minLength", 0)
            return self.rule(f'"\\"" char{{{low},{limit}}} "\\""', f"{hint}-string")
        if kind == "integer":
            return self._integer(schema, hint)
        if kind in ("number", "boolean", "null"):
            return str(kind)
        return "value"

    def _integer(self, schema: Mapping[str, Any], hint: str) -> str:
        """Small ranges are listed exactly; a lower bound of 0 or more excludes negatives; other
        bounds are not enforced by the grammar (documented limit)."""
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, int) and isinstance(high, int) and 0 <= high - low <= MAX_LISTED_INTEGERS:
            return self.rule(" | ".join(literal(str(v)) for v in range(low, high + 1)), f"{hint}-int")
        if isinstance(low, int) and low >= 0:
            return self.rule("[0-9] | [1-9] [0-9]{0,15}", f"{hint}-nonneg")
        return "integer"

    def _object(self, schema: Mapping[str, Any], hint: str) -> str:
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            return "object"
        required = [k for k in properties if k in set(schema.get("required") or ())]
        optional = [k for k in properties if k not in required]

        def member(name: str) -> str:
            return f'{literal(json.dumps(name))} ws ":" ws {self.schema(properties[name], f"{hint}-{name}")}'

        parts = [member(name) for name in required]
        body = ' ws "," ws '.join(parts)
        if optional:
            tails = [f'( ws "," ws {member(name)} )?' for name in optional]
            if parts:
                body = f"{body} {' '.join(tails)}"
            else:
                # No required member: one alternative per possible first member, the rest optional.
                heads = [" ".join([member(name), *(tails[i + 1 :])]) for i, name in enumerate(optional)]
                body = f"( {' | '.join(heads)} )?"
        return self.rule(f'"{{" ws {body} ws "}}"', hint)

    def _array(self, schema: Mapping[str, Any], hint: str) -> str:
        item = self.schema(schema.get("items"), f"{hint}-item")
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", MAX_ARRAY_ITEMS))
        if high <= 0:
            return self.rule('"[" ws "]"', hint)
        rest = f'( ws "," ws {item} ){{{max(low - 1, 0)},{high - 1}}}'
        body = f'"[" ws {item} {rest} ws "]"'
        if low == 0:
            body = f'"[" ws ( {item} {rest} )? ws "]"'
        return self.rule(body, hint)

    def render(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        return "\n".join(lines) + "\n"


def grammar_for_schema(schema: Mapping[str, Any]) -> str:
    """GBNF whose language is the JSON documents valid for `schema` (within the subset above)."""
    builder = _Builder()
    return builder.render(builder.schema(bounded(schema), "root-value"))


def prose_or_call_grammar(call: Mapping[str, Any], *, max_prose_chars: int = 4000) -> str:
    """GBNF for tool_choice="auto" with constraints on: either prose that does not open with `{` or
    `[`, or a JSON call valid for the call schema (see tools.call_schema)."""
    builder = _Builder()
    call_rule = builder.schema(bounded(call), "call")
    builder.rules["prose"] = f"[^{{\\[ \\t\\n] [^\\x00]{{0,{max_prose_chars}}}"
    return builder.render(f"{call_rule} | prose")
