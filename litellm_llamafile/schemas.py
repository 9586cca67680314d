"""JSON schemas as pydantic and agent frameworks emit them -> self-contained schemas a constraint can use.

`call_schema` nests a tool's parameters under `arguments`, so a `#/$defs/...` reference inside them would
point at nothing once nested: references are inlined before nesting. `allOf` is merged and OpenAPI's
`nullable` becomes an `anyOf` with null, so the JSON-schema path (llama-server) and the GBNF path see
the same plain schema.

Recursive references are expanded to a bounded depth; past it, the branches that would recurse are
pruned (an optional member is left out, an array gets no items, an `anyOf` option is dropped), so the
constraint still only admits values valid for the original schema. Only when no finite value is left
does the schema become a generic value.

A schema comes from the caller (through the proxy, from any client), so the work it may cause is bounded
by `SchemaLimits`: `checked` refuses what no constraint can honour (a bound that is not a finite number,
a minimum above its maximum) and anything nested too deep or too large, before any other step walks it;
`resolved` counts the subschemas, reference bytes and allOf alternatives it creates. Past a limit the
caller gets a `SchemaError` (a 400), never a stalled event loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from .settings import DEFAULT_LIMITS, SchemaLimits

MAX_REF_DEPTH = 3  # expansions of one reference along one path
ANSWER_MAX_STRING = 2000  # an answer's strings (response_format) may be long prose, unlike call arguments

# The string formats the constraints spell exactly, with their longest length (grammar._FORMATS;
# llama-server's own converter knows them too), so they need no maxLength.
FORMAT_LENGTHS = {"date": 10, "time": 16, "date-time": 27, "uuid": 36}

_NEEDS_RESOLUTION = ("$ref", "allOf", "nullable", "$defs", "definitions")
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_COUNT_PAIRS = (("minLength", "maxLength"), ("minItems", "maxItems"), ("minProperties", "maxProperties"))
_NUMBER_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
WRITABLE = 10**16 - 1  # the largest magnitude a constraint writes (16 digits; grammar.py)


class SchemaError(ValueError):
    """A schema refused before any request: one no constraint can honour, or one past a `SchemaLimits`
    budget. The message says which, and where."""


def type_names(schema: Mapping[str, Any]) -> list[str]:
    """The schema's `type` as a list of distinct names (a repeated name is walked once)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return [k for k in dict.fromkeys(kinds) if isinstance(k, str)]


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:  # an integer too large for a float
        return False


def _bound_problem(schema: Mapping[str, Any]) -> str | None:
    """Why the bounds of one schema object cannot be honoured, or None."""
    for key in _COUNTS:
        value = schema.get(key)
        if value is not None and not (
            _is_number(value) and _finite(value) and value >= 0 and float(value).is_integer()
        ):
            return f"{key} must be a non-negative integer, not {_short(value)}"
    for key in _NUMBER_BOUNDS:
        value = schema.get(key)
        if value is None or (key.startswith("exclusive") and isinstance(value, bool)):
            continue  # draft 4 spells exclusive bounds as booleans
        if not (_is_number(value) and _finite(value)):
            return f"{key} must be a finite number, not {_short(value)}"
    for low_key, high_key in (*_COUNT_PAIRS, ("minimum", "maximum")):
        low, high = schema.get(low_key), schema.get(high_key)
        if _is_number(low) and _is_number(high) and low > high:
            return f"{low_key} {_short(low)} is above {high_key} {_short(high)}: no value fits"
    low, high = schema.get("minimum"), schema.get("maximum")
    if (_is_number(low) and low > WRITABLE) or (_is_number(high) and high < -WRITABLE):
        return f"bounds {_short(low)}..{_short(high)} leave no number of at most 16 digits"
    return _empty_range(schema)


def _empty_range(schema: Mapping[str, Any]) -> str | None:
    """Why no number (or integer, for an integer schema) lies within the bounds, exclusive ones included
    in either draft's spelling; None when one does."""
    lows: list[tuple[float, bool]] = []  # (bound, exclusive)
    highs: list[tuple[float, bool]] = []
    for key, into, open_key in (
        ("minimum", lows, "exclusiveMinimum"),
        ("maximum", highs, "exclusiveMaximum"),
    ):
        if _is_number(schema.get(key)):
            into.append((schema[key], schema.get(open_key) is True))
        if _is_number(schema.get(open_key)):
            into.append((schema[open_key], True))
    if not lows or not highs:
        return None
    low, low_open = max(lows)
    high, high_open = min(highs)
    if "integer" in type_names(schema) and len(type_names(schema)) == 1:
        low, low_open = (math.floor(low) + 1 if low_open else math.ceil(low)), False
        high, high_open = (math.ceil(high) - 1 if high_open else math.floor(high)), False
    if low > high or (low == high and (low_open or high_open)):
        return f"no value lies between the bounds {_short(low)} and {_short(high)}"
    return None


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def _where(path: str) -> str:
    return path if len(path) <= 80 else "..." + path[-77:]


def checked(schema: object, limits: SchemaLimits = DEFAULT_LIMITS) -> object:
    """`schema` itself, once it is known to be usable: nested at most `limits.depth` deep, at most
    `limits.nodes` values, every number finite and every bound honourable. Walks without recursion, so
    it is safe on any input; every later step may then recurse. Raises SchemaError."""
    stack: list[tuple[object, int, str]] = [(schema, 1, "#")]
    seen = 0
    while stack:
        value, depth, where = stack.pop()
        seen += 1
        if seen > limits.nodes:
            raise SchemaError(f"more than {limits.nodes} values (limit schema_max_nodes)")
        if depth > limits.depth:
            raise SchemaError(
                f"nested more than {limits.depth} deep at {_where(where)} (limit schema_max_depth)"
            )
        if isinstance(value, Mapping):
            problem = _bound_problem(value)
            if problem is not None:
                raise SchemaError(f"{problem} at {_where(where)}")
            stack.extend((v, depth + 1, f"{where}/{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{where}/{i}") for i, v in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(f"{value} at {_where(where)} is not a JSON number")
    return schema


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


def resolved(
    schema: object, max_ref_depth: int = MAX_REF_DEPTH, limits: SchemaLimits = DEFAULT_LIMITS
) -> object:
    """`schema` with local references inlined, `allOf` merged and `nullable` spelled as `anyOf`; the
    very same object when it uses none of them (so schemas that need nothing are sent unchanged).
    `schema` must have passed `checked`. Raises SchemaError past a budget of `limits`."""
    return resolution(schema, max_ref_depth, limits)[0]


def resolution(
    schema: object, max_ref_depth: int = MAX_REF_DEPTH, limits: SchemaLimits = DEFAULT_LIMITS
) -> tuple[object, bool]:
    """`resolved(schema)`, and whether a recursive reference was cut at `max_ref_depth` (if not, a
    smaller depth gives the same schema)."""
    if not needs_resolution(schema):
        return schema, False
    resolver = _Resolver(schema, max_ref_depth, limits)
    out = resolver.walk(schema, (), 1)
    return ({} if isinstance(out, _Never) else out), resolver.pruned


class _Resolver:
    """One schema's resolution, counting its work: every subschema walked or merged is a node, every
    reference expanded adds its target's size, and no allOf merge may multiply alternatives past the
    budget. So the result is linear in the input and the limits, however references fan out."""

    def __init__(self, root: object, max_ref_depth: int, limits: SchemaLimits) -> None:
        self.root = root
        self.max_ref_depth = max_ref_depth
        self.limits = limits
        self.nodes = 0
        self.ref_bytes = 0
        self.pruned = False
        self._sizes: dict[str, int] = {}

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > self.limits.nodes:
            raise SchemaError(
                f"more than {self.limits.nodes} subschemas once references are inlined and allOf "
                "merged (limit schema_max_nodes)"
            )

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

    def walk(self, schema: object, refs: tuple[str, ...], depth: int) -> object:
        if schema is True:
            return {}
        if schema is False:
            return NEVER
        if not isinstance(schema, Mapping):
            return schema
        self.count()
        if depth > self.limits.depth:
            raise SchemaError(
                f"nested more than {self.limits.depth} deep once references are inlined "
                "(limit schema_max_depth)"
            )
        node: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("$defs", "definitions", "$ref", "allOf", "nullable"):
                continue
            node[key] = self.keyword(key, value, refs, depth)
        result: object = _pruned(node)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            result = self.merge(self.reference(ref, refs, depth), result)
        for part in schema.get("allOf") or ():
            result = self.merge(result, self.walk(part, refs, depth + 1))
        if schema.get("nullable") is True and not isinstance(result, _Never):
            result = {"anyOf": [result, {"type": "null"}]}
        return result

    def reference(self, ref: str, refs: tuple[str, ...], depth: int) -> object:
        if refs.count(ref) >= self.max_ref_depth:
            self.pruned = True
            return NEVER
        target = self.target(ref)
        size = self._sizes.get(ref)
        if size is None:
            size = self._sizes[ref] = len(json.dumps(target, default=str))
        self.ref_bytes += size
        if self.ref_bytes > self.limits.constraint_bytes:
            raise SchemaError(
                f"references expand to more than {self.limits.constraint_bytes} bytes "
                "(limit constraint_max_bytes)"
            )
        return self.walk(target, (*refs, ref), depth + 1)

    def keyword(self, key: str, value: object, refs: tuple[str, ...], depth: int) -> object:
        """A keyword's value with its subschemas resolved (data keywords like const are left alone)."""
        if key in ("properties", "patternProperties") and isinstance(value, Mapping):
            return {name: self.walk(sub, refs, depth + 1) for name, sub in value.items()}
        if key in ("anyOf", "oneOf", "prefixItems") and isinstance(value, list):
            return [self.walk(sub, refs, depth + 1) for sub in value]
        if key in ("items", "additionalProperties") and isinstance(value, Mapping):
            walked = self.walk(value, refs, depth + 1)
            return False if isinstance(walked, _Never) and key == "additionalProperties" else walked
        return value  # data (const, enum, default, ...) and booleans stay as given

    def merge(self, first: object, second: object) -> object:
        """Both schemas at once (allOf of two), for the shapes pydantic and agent SDKs produce: objects'
        members are joined, bounds tightened, types intersected; other keywords keep the first's value."""
        if isinstance(first, _Never) or isinstance(second, _Never):
            return NEVER
        if not isinstance(first, Mapping) or not first:
            return second
        if not isinstance(second, Mapping) or not second:
            return first
        self.count()
        out = dict(first)
        for key, value in second.items():
            if key not in out:
                out[key] = value
            elif key in ("properties", "items", "additionalProperties", "anyOf", "oneOf"):
                out[key] = self.merge_subschemas(key, out[key], value)
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
        if _bound_problem(out) is not None:
            return NEVER  # tightened past each other: nothing satisfies both
        return _pruned(out)

    def merge_subschemas(self, key: str, mine: Any, theirs: object) -> object:
        """One keyword holding subschemas, merged: members pairwise, items and extra keys as schemas,
        alternatives as their cross product (bounded by `limits.alternatives`)."""
        if key == "properties" and isinstance(theirs, Mapping):
            joined = dict(mine)
            for name, sub in theirs.items():
                joined[name] = self.merge(joined[name], sub) if name in joined else sub
            return joined
        if key in ("items", "additionalProperties") and isinstance(theirs, Mapping | bool):
            return False if theirs is False or mine is False else self.merge(mine, theirs)
        if key in ("anyOf", "oneOf") and isinstance(theirs, list):
            if len(mine) * len(theirs) > self.limits.alternatives:
                raise SchemaError(
                    f"allOf of anyOf/oneOf makes more than {self.limits.alternatives} alternatives "
                    "(limit schema_max_alternatives)"
                )
            return [self.merge(a, b) for a in mine for b in theirs]
        return mine


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


def closed(schema: object, *, strict: bool = False) -> object:
    """A resolved schema as strict as the tool that receives the call: an object that lists its members
    (none included) and says nothing of others admits exactly those, as OpenAI's strict calls and
    pydantic's `extra="forbid"` expect; a free-form object (no `properties`) stays open, and an explicit
    `additionalProperties` is kept. `strict` (a tool's `function.strict`) closes every object and
    requires every member, as OpenAI defines it. Members named by a pattern (`patternProperties`, or a
    `propertyNames` pattern) are refused: no constraint here spells a regular expression, and opening
    the object instead would admit any key (SchemaError)."""
    if isinstance(schema, list):
        return [closed(item, strict=strict) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    names = schema.get("propertyNames")
    for key in ("patternProperties", "propertyNames"):
        if (key == "patternProperties" and key in schema) or (
            key == "propertyNames" and isinstance(names, Mapping) and "pattern" in names
        ):
            raise SchemaError(
                f"{key} is not supported in a call's constraint (keys named by a pattern); list the "
                "members in `properties`, or type the keys with `additionalProperties`"
            )
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {name: closed(sub, strict=strict) for name, sub in value.items()}
        elif key in ("items", "prefixItems", "anyOf", "oneOf", "additionalProperties"):
            out[key] = closed(value, strict=strict)
        else:
            out[key] = value
    is_object = "object" in type_names(out) or "properties" in out
    if is_object and "additionalProperties" not in out and ("properties" in out or strict):
        out["additionalProperties"] = False
    if is_object and strict:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties") or {})
    return out


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
