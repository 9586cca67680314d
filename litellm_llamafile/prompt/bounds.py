"""Bounds a constraint puts on a schema so a constrained reply always ends: every string gets a
maxLength and every array a maxItems (`bounded`), the longest text a bounded schema admits is known
(`worst_case_chars`), and `fitted` shrinks the bounds until that fits the reply's `max_tokens`, since a
call cut off by the token limit is no call at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..core.settings import DEFAULT_LIMITS, SchemaLimits
from .schemas import FORMAT_LENGTHS, MAX_REF_DEPTH, SchemaError, checked, resolution, type_names

# Bounds added to unbounded strings and arrays of a constraint schema: a small model under greedy
# sampling can otherwise repeat inside one string until max_tokens, and a cut-off call is no call.
MAX_STRING_LENGTH = 200


MAX_ARRAY_ITEMS = 16


_STRING_LIMITERS = ("maxLength", "enum", "const", "pattern", "format")


# The longest string and array a caller's own maxLength / maxItems may ask for: a grammar spells
# `x{0,N}` as N rules in the server, and no reply is that long anyway.
MAX_EXPLICIT_LENGTH = 8192


MAX_EXPLICIT_ITEMS = 1024


def _limit(schema: Mapping[str, Any], low_key: str, high_key: str, default: int, ceiling: int) -> int:
    """The upper bound to write for `high_key`: the schema's own (at most `ceiling`), else `default`,
    and never below the schema's lower bound."""
    low = int(schema.get(low_key, 0))
    if low > ceiling:
        raise SchemaError(f"{low_key} {low} is above the {ceiling} a constraint can write")
    high = schema.get(high_key)
    return max(default, low) if high is None else min(int(high), ceiling)


def bounded(schema: object, max_string: int = MAX_STRING_LENGTH, max_items: int = MAX_ARRAY_ITEMS) -> object:
    """A copy of a JSON schema where every string has a maxLength and every array a maxItems (and an
    object whose keys are typed by additionalProperties, a maxProperties and bounded key names)."""
    if isinstance(schema, list):
        return [bounded(item, max_string, max_items) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {key: bounded(value, max_string, max_items) for key, value in schema.items()}
    type_set = set(type_names(out))
    if "string" in type_set and (
        "maxLength" in out
        or not any(key in out for key in _STRING_LIMITERS)
        # a format no constraint spells (email, uri, ...) is only a string
        or out.get("format", "date") not in FORMAT_LENGTHS
    ):
        out["maxLength"] = _limit(out, "minLength", "maxLength", max_string, MAX_EXPLICIT_LENGTH)
    if "array" in type_set:
        out["maxItems"] = _limit(out, "minItems", "maxItems", max_items, MAX_EXPLICIT_ITEMS)
    if isinstance(out.get("additionalProperties"), Mapping):
        out["maxProperties"] = _limit(out, "minProperties", "maxProperties", max_items, MAX_EXPLICIT_ITEMS)
        out.setdefault("propertyNames", {"type": "string", "maxLength": max_string})
    return out


def worst_case_chars(schema: object, max_string: int = MAX_STRING_LENGTH) -> int:
    """The longest compact JSON text a (bounded) schema admits; a char is at most one token for ASCII
    text, so this bounds the tokens a constrained reply can take."""
    if not isinstance(schema, Mapping):
        return max_string + 2  # a generic value: counted as one bounded string
    if "const" in schema:
        return len(json.dumps(schema["const"], ensure_ascii=False))
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return max(len(json.dumps(v, ensure_ascii=False)) for v in schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        return max(worst_case_chars(option, max_string) for option in options)
    kinds = type_names(schema)
    if len(kinds) > 1:  # nullable and other unions: the longest of its types
        return max(worst_case_chars({**schema, "type": k}, max_string) for k in kinds)
    kind = kinds[0] if kinds else None
    if kind == "object" or "properties" in schema:
        return _object_worst_case(schema, max_string)
    if kind == "array":
        items = int(schema.get("maxItems", MAX_ARRAY_ITEMS))
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            head = [2 + worst_case_chars(p, max_string) for p in prefix[:items]]
            rest = max(items - len(prefix), 0) * (2 + worst_case_chars(schema.get("items"), max_string))
            return 2 + sum(head) + rest
        return 2 + items * (2 + worst_case_chars(schema.get("items"), max_string))
    if kind == "string":
        if "maxLength" not in schema and schema.get("format") in FORMAT_LENGTHS:
            return FORMAT_LENGTHS[schema["format"]] + 2
        return int(schema.get("maxLength", max_string)) * 2 + 2  # a char may be a 2-char escape
    if kind == "integer":
        return 24
    if kind == "number":
        return 40  # sign, 16 digits, point, 16 digits, exponent
    return 5  # boolean, null


def _object_worst_case(schema: Mapping[str, Any], max_string: int) -> int:
    properties = schema.get("properties")
    extra = schema.get("additionalProperties")
    listed = properties if isinstance(properties, Mapping) else {}
    members = sum(
        len(json.dumps(key)) + 3 + worst_case_chars(value, max_string) for key, value in listed.items()
    )
    if extra is True:  # any extra keys (grammar: at most MAX_ARRAY_ITEMS after the members)
        return 2 + members + MAX_ARRAY_ITEMS * (2 * max_string + 8)
    if isinstance(extra, Mapping):  # typed extra keys, bounded by `bounded`
        key = worst_case_chars(schema.get("propertyNames") or {"type": "string"}, max_string)
        count = int(schema.get("maxProperties", MAX_ARRAY_ITEMS))
        return 2 + members + count * (key + 4 + worst_case_chars(extra, max_string))
    if not listed and extra is not False:  # a free-form object: one bounded value
        return max_string + 2
    return 2 + members


def fitted(
    schema: object,
    budget: int | None,
    max_string: int = MAX_STRING_LENGTH,
    limits: SchemaLimits = DEFAULT_LIMITS,
    shape: Callable[[object], object] = lambda plain: plain,
) -> object:
    """`bounded(resolved(schema))` with limits small enough that its worst case fits `budget` tokens, so
    a forced call ends within max_tokens instead of being cut off (which would be no call at all).
    Strings shrink first, then arrays, then the depth of recursive references. `shape` changes the
    resolved schema first (`schemas.closed` for call arguments). Raises SchemaError for a schema no
    constraint can honour or past `limits`."""
    if budget is not None and budget <= 0:
        budget = None  # llama.cpp's max_tokens -1 (or 0) means no limit, not a tiny one
    checked(schema, limits)
    fitted: object = schema
    for depth in range(MAX_REF_DEPTH, 0, -1):
        plain, pruned = resolution(schema, depth, limits)
        fitted, fits = _shrunk(shape(plain), budget, max_string)
        if fits or not pruned:  # nothing recursive was cut: a smaller depth would give the same
            break
    return fitted


def _shrunk(schema: object, budget: int | None, max_string: int) -> tuple[object, bool]:
    """`bounded(schema)` shrunk to fit `budget`, and whether it does: the first of the shrink levels
    (strings halved down to 8 characters, then arrays halved down to one item) whose worst case fits.
    The worst case only falls from level to level, so a binary search finds it in a few passes."""
    levels = [(max_string, MAX_ARRAY_ITEMS)]
    while levels[-1][0] > 8:
        levels.append((levels[-1][0] // 2, MAX_ARRAY_ITEMS))
    while levels[-1][1] > 1:
        levels.append((levels[-1][0], levels[-1][1] // 2))

    def fitted(level: int) -> tuple[object, bool]:
        strings, items = levels[level]
        shaped = bounded(schema, strings, items)
        return shaped, budget is None or worst_case_chars(shaped, strings) <= budget

    first, fits = fitted(0)
    if fits:
        return first, True
    last, fits = fitted(len(levels) - 1)
    if not fits:
        return last, False  # the caller's own limits do not fit: nothing left to shrink
    low, high = 0, len(levels) - 1  # levels[low] does not fit, levels[high] does
    while high - low > 1:
        middle = (low + high) // 2
        shaped, fits = fitted(middle)
        low, high, last = (low, middle, shaped) if fits else (middle, high, last)
    return last, True
