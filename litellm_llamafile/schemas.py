"""JSON schemas as pydantic and agent frameworks emit them -> self-contained schemas a constraint can use.

`call_schema` nests a tool's parameters under `arguments`, so a `#/$defs/...` reference inside them would
point at nothing once nested: references are inlined before nesting. `allOf` is merged and OpenAPI's
`nullable` becomes an `anyOf` with null, so the JSON-schema path (llama-server) and the GBNF path see
the same plain schema.

Recursive references are expanded to a bounded depth; past it, the branches that would recurse are
pruned (an optional member is left out, an array gets no items, an `anyOf` option is dropped), so the
constraint still only admits values valid for the original schema. Only when no finite value is left
does the schema become a generic value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_REF_DEPTH = 3  # expansions of one reference along one path
MAX_REF_EXPANSIONS = 512  # in one schema: a bound on the inlined size for reference-heavy schemas
ANSWER_MAX_STRING = 2000  # an answer's strings (response_format) may be long prose, unlike call arguments

# The string formats the constraints spell exactly, with their longest length (grammar._FORMATS;
# llama-server's own converter knows them too), so they need no maxLength.
FORMAT_LENGTHS = {"date": 10, "time": 16, "date-time": 27, "uuid": 36}

_NEEDS_RESOLUTION = ("$ref", "allOf", "nullable", "$defs", "definitions")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


class _Never:
    """A schema no value satisfies (a pruned recursive branch)."""


NEVER = _Never()


def subschemas(schema: Mapping[str, Any]) -> list[object]:
    """The schemas directly inside `schema` (members, items, alternatives), not data such as `const`."""
    found: list[object] = []
    for key in ("properties", "patternProperties"):
        if isinstance(schema.get(key), Mapping):
            found += schema[key].values()
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            found += schema[key]
    found += [schema[k] for k in ("items", "additionalProperties") if isinstance(schema.get(k), Mapping)]
    return found


def needs_resolution(schema: object) -> bool:
    """Whether `schema` uses references, allOf or nullable anywhere (else `resolved` returns it as is)."""
    if not isinstance(schema, Mapping):
        return False
    return any(key in schema for key in _NEEDS_RESOLUTION) or any(map(needs_resolution, subschemas(schema)))


def resolved(schema: object, max_ref_depth: int = MAX_REF_DEPTH) -> object:
    """`schema` with local references inlined, `allOf` merged and `nullable` spelled as `anyOf`; the
    very same object when it uses none of them (so schemas that need nothing are sent unchanged)."""
    if not needs_resolution(schema):
        return schema
    out = _Resolver(schema, max_ref_depth).walk(schema, ())
    return {} if isinstance(out, _Never) else out


class _Resolver:
    def __init__(self, root: object, max_ref_depth: int) -> None:
        self.root = root
        self.max_ref_depth = max_ref_depth
        self.expansions = 0

    def target(self, ref: str) -> object:
        """The schema a local JSON pointer (`#/$defs/Name`, `#/definitions/Name`, `#`) points at."""
        if not ref.startswith("#"):
            return {}  # remote references are never fetched: a generic value
        node: object = self.root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node

    def walk(self, schema: object, refs: tuple[str, ...]) -> object:
        if schema is True:
            return {}
        if schema is False:
            return NEVER
        if not isinstance(schema, Mapping):
            return schema
        node: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("$defs", "definitions", "$ref", "allOf", "nullable"):
                continue
            node[key] = self.keyword(key, value, refs)
        result: object = _pruned(node)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            result = _merge(self.reference(ref, refs), result)
        for part in schema.get("allOf") or ():
            result = _merge(result, self.walk(part, refs))
        if schema.get("nullable") is True and not isinstance(result, _Never):
            result = {"anyOf": [result, {"type": "null"}]}
        return result

    def reference(self, ref: str, refs: tuple[str, ...]) -> object:
        if refs.count(ref) >= self.max_ref_depth or self.expansions >= MAX_REF_EXPANSIONS:
            return NEVER
        self.expansions += 1
        return self.walk(self.target(ref), (*refs, ref))

    def keyword(self, key: str, value: object, refs: tuple[str, ...]) -> object:
        """A keyword's value with its subschemas resolved (data keywords like const are left alone)."""
        if key in ("properties", "patternProperties") and isinstance(value, Mapping):
            return {name: self.walk(sub, refs) for name, sub in value.items()}
        if key in ("anyOf", "oneOf", "prefixItems") and isinstance(value, list):
            return [self.walk(sub, refs) for sub in value]
        if key in ("items", "additionalProperties") and isinstance(value, Mapping):
            walked = self.walk(value, refs)
            return False if isinstance(walked, _Never) and key == "additionalProperties" else walked
        return value  # data (const, enum, default, ...) and booleans stay as given


def _pruned(node: dict[str, Any]) -> object:
    """`node` without the pruned (NEVER) parts it can do without; NEVER when it needs one."""
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        required = set(node.get("required") or ())
        if any(isinstance(sub, _Never) and name in required for name, sub in properties.items()):
            return NEVER
        node["properties"] = {n: s for n, s in properties.items() if not isinstance(s, _Never)}
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            options = [s for s in node[key] if not isinstance(s, _Never)]
            if not options:
                return NEVER
            node[key] = options
    prefix = node.get("prefixItems")
    if isinstance(prefix, list):
        cut = next((i for i, s in enumerate(prefix) if isinstance(s, _Never)), None)
        if cut is not None:
            if cut < int(node.get("minItems", 0)):
                return NEVER
            node["prefixItems"] = prefix[:cut]
            node["maxItems"] = cut
            node.pop("items", None)
    if isinstance(node.get("items"), _Never) or node.get("items") is False:
        if int(node.get("minItems", 0)) > len(node.get("prefixItems") or ()):
            return NEVER
        del node["items"]
        node["maxItems"] = len(node.get("prefixItems") or ())
    return node


def _merge(first: object, second: object) -> object:
    """Both schemas at once (allOf of two), for the shapes pydantic and agent SDKs produce: objects'
    members are joined, bounds tightened, types intersected; other keywords keep the first's value."""
    if isinstance(first, _Never) or isinstance(second, _Never):
        return NEVER
    if not isinstance(first, Mapping) or not first:
        return second
    if not isinstance(second, Mapping) or not second:
        return first
    out = dict(first)
    for key, value in second.items():
        if key not in out:
            out[key] = value
        elif key == "properties" and isinstance(value, Mapping):
            mine = dict(out[key])
            for name, sub in value.items():
                mine[name] = _merge(mine[name], sub) if name in mine else sub
            out[key] = mine
        elif key == "required":
            out[key] = list(dict.fromkeys([*out[key], *value]))
        elif key == "type":
            merged = _intersect_types(out[key], value)
            if merged is None:
                return NEVER
            out[key] = merged
        elif key == "enum" and isinstance(value, list):
            out[key] = [v for v in out[key] if v in value]
        elif key in _LOWER_BOUNDS:
            out[key] = max(out[key], value)
        elif key in _UPPER_BOUNDS:
            out[key] = min(out[key], value)
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping | bool):
            if value is False or out[key] is False:
                out[key] = False
            else:
                out[key] = _merge(out[key], value)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_merge(a, b) for a in out[key] for b in value]
    return _pruned(out)


def _intersect_types(first: object, second: object) -> object:
    """The types both allow (an integer is a number); None when they share none."""
    ones = first if isinstance(first, list) else [first]
    twos = second if isinstance(second, list) else [second]

    def allows(kinds: list[object], kind: object) -> bool:
        return kind in kinds or (kind == "integer" and "number" in kinds)

    both = [k for k in ones if allows(twos, k)] + [k for k in twos if k == "integer" and allows(ones, k)]
    both = list(dict.fromkeys(both))
    if not both:
        return None
    return both[0] if len(both) == 1 else both


def answer_schema(response_format: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema of a structured answer an OpenAI `response_format` asks for (json_schema: its schema;
    json_object: any object); None for text or an unknown type."""
    kind = response_format.get("type")
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return schema if isinstance(schema, Mapping) else {"type": "object"}
    return None
