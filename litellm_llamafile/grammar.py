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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from .schemas import FORMAT_LENGTHS, WRITABLE, SchemaError, resolved, type_names
from .tools import MAX_ARRAY_ITEMS, MAX_STRING_LENGTH, bounded

MAX_LISTED_INTEGERS = 256
_NAME_CHARS = 48

_BASE_RULES = {
    # At most one space between JSON tokens: a small model under a grammar otherwise pads with newlines
    # and indentation until max_tokens, and a cut-off call is no call.
    "ws": r'" "?',
    # No \uD800-\uDFFF escape: a lone surrogate is valid JSON text but pydantic (and so agent SDKs)
    # reject it; every character can still be written raw.
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" '
    r"([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))",
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
    """One grammar being written. Every subschema is visited once and every rule body written once (an
    identical body reuses its rule), so the grammar is linear in the schema."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = dict(_BASE_RULES)
        self._names = {body: name for name, body in _BASE_RULES.items()}
        self._count = 0

    def rule(self, body: str, hint: str = "r") -> str:
        name = self._names.get(body)
        if name is None:
            self._count += 1
            # A rule is named by its path in the schema, cut to its last characters: a deep path would
            # otherwise make every name as long as the nesting, and the grammar quadratic in it.
            path = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[-_NAME_CHARS:].strip("-")
            name = f"{path or 'r'}-{self._count}"
            self.rules[name] = body
            self._names[body] = name
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
        kinds = type_names(schema)
        if len(kinds) > 1:  # each type reads only its own keywords: no subschema is walked twice
            return self.rule(" | ".join(self.schema({**schema, "type": k}, hint) for k in kinds), hint)
        kind = kinds[0] if kinds else None
        if kind == "object" or (kind is None and "properties" in schema):
            return self._object(schema, hint)
        if kind == "array":
            return self._array(schema, hint)
        if kind == "string":
            return self._string(schema, hint)
        if kind == "integer":
            return self._integer(schema, hint)
        if kind == "number":
            return self._number(schema, hint)
        if kind in ("boolean", "null"):
            return str(kind)
        return "value"

    def _string(self, schema: Mapping[str, Any], hint: str) -> str:
        """Length bounds, and the common formats; a `pattern` is not translated: the string is only
        bounded (documented limit)."""
        limit = schema.get("maxLength", MAX_STRING_LENGTH)
        low = schema.get("minLength", 0)
        shape = _FORMATS.get(str(schema.get("format")))
        if shape is not None and "pattern" not in schema and low <= FORMAT_LENGTHS[schema["format"]] <= limit:
            return self.rule(f'"\\"" {shape} "\\""', f"{hint}-{schema['format']}")
        return self.rule(f'"\\"" char{{{low},{limit}}} "\\""', f"{hint}-string")

    def _integer(self, schema: Mapping[str, Any], hint: str) -> str:
        """Small ranges are listed exactly, others spelled digit by digit (within 16 digits)."""
        low, high = _integer_bounds(schema)
        if low is None and high is None:
            return "integer"
        if low is not None and high is not None and 0 <= high - low <= MAX_LISTED_INTEGERS:
            return self.rule(" | ".join(literal(str(v)) for v in range(low, high + 1)), f"{hint}-int")
        if low == 0 and high is None:
            return self.rule("[0-9] | [1-9] [0-9]{0,15}", f"{hint}-nonneg")
        return self.rule(_signed_range(low, high, fraction=None), f"{hint}-int")

    def _number(self, schema: Mapping[str, Any], hint: str) -> str:
        """Integral bounds are enforced (the number is then written without exponent); other bounds
        only by sign (documented limit)."""
        bounds = _number_bounds(schema)
        if bounds is None:
            low = schema.get("minimum", schema.get("exclusiveMinimum"))
            if _is_number(low) and low >= 0 and "maximum" not in schema and "exclusiveMaximum" not in schema:
                return self.rule(_NONNEG_NUMBER, f"{hint}-nonneg")
            return "number"
        if bounds.low is None and bounds.high is None:
            return "number"
        if bounds.low is not None and bounds.high is not None and bounds.low >= bounds.high:
            if bounds.low == bounds.high and not (bounds.low_open or bounds.high_open):
                return self.rule(literal(str(bounds.low)), f"{hint}-num")
            raise SchemaError(f"no number lies between the bounds {bounds.low}..{bounds.high}")
        return self.rule(_number_range(bounds), f"{hint}-num")

    def _object(self, schema: Mapping[str, Any], hint: str) -> str:
        """Listed members (required ones in order, then the optional ones, each at most once), and
        after them extra keys only where `additionalProperties` admits them (true or a schema)."""
        properties = schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            return self._map(schema, hint)
        required = [k for k in properties if k in set(schema.get("required") or ())]
        optional = [k for k in properties if k not in required]
        members = {
            name: f'{literal(json.dumps(name))} ws ":" ws {self.schema(properties[name], f"{hint}-{name}")}'
            for name in properties
        }
        pair = self._extra_pair(schema, hint)
        extras = f' ( ws "," ws {pair} ){{0,{MAX_ARRAY_ITEMS}}}' if pair else ""
        body = ' ws "," ws '.join(members[name] for name in required)
        if optional and required:
            body += " " + " ".join(f'( ws "," ws {members[name]} )?' for name in optional)
        elif optional:
            # No required member: one alternative per possible first member, the members after it
            # optional. The optional tails are chained rules, so the grammar stays linear in the members.
            tail = ""
            heads: list[str] = []
            for name in reversed(optional):
                heads.append(f"{members[name]} {tail}".strip())
                tail = self.rule(f'( ws "," ws {members[name]} )? {tail}'.strip(), f"{hint}-rest")
            first = " | ".join(reversed(heads))
            if pair:  # or only extra keys
                first = f'( {first} ){extras} | {pair} ( ws "," ws {pair} ){{0,{MAX_ARRAY_ITEMS - 1}}}'
                extras = ""
            body = f"( {first} )?"
        return self.rule(f'"{{" ws {body}{extras} ws "}}"', hint)

    def _extra_pair(self, schema: Mapping[str, Any], hint: str) -> str | None:
        """The rule of one key the members do not list, with its value: any key and any value for
        `additionalProperties: true`, typed ones for a schema; None when no such key is admitted."""
        extra = schema.get("additionalProperties")
        if extra is True:
            return self.rule('string ws ":" ws value', f"{hint}-pair")
        if not isinstance(extra, Mapping):
            return None
        names = schema.get("propertyNames")
        key = self.schema({**(names if isinstance(names, Mapping) else {}), "type": "string"}, f"{hint}-key")
        return self.rule(f'{key} ws ":" ws {self.schema(extra, f"{hint}-extra")}', f"{hint}-pair")

    def _map(self, schema: Mapping[str, Any], hint: str) -> str:
        """An object without listed members: empty when additionalProperties is false, typed keys
        when it is a schema, any object otherwise."""
        extra = schema.get("additionalProperties")
        if extra is False:
            return self.rule('"{" ws "}"', f"{hint}-empty")
        pair = self._extra_pair(schema, hint) if isinstance(extra, Mapping) else None
        if pair is None:
            return "object"
        low = int(schema.get("minProperties", 0))
        high = int(schema.get("maxProperties", MAX_ARRAY_ITEMS))
        return self.rule(_repeated(pair, low, high, "{", "}"), hint)

    def _array(self, schema: Mapping[str, Any], hint: str) -> str:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", MAX_ARRAY_ITEMS))
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            return self._tuple(schema, prefix[:high], low, high, hint)
        if schema.get("items") is False:
            high = 0
        item = self.schema(schema.get("items"), f"{hint}-item")
        if high <= 0:
            return self.rule('"[" ws "]"', hint)
        rest = f'( ws "," ws {item} ){{{max(low - 1, 0)},{high - 1}}}'
        body = f'"[" ws {item} {rest} ws "]"'
        if low == 0:
            body = f'"[" ws ( {item} {rest} )? ws "]"'
        return self.rule(body, hint)

    def _tuple(self, schema: Mapping[str, Any], prefix: list[Any], low: int, high: int, hint: str) -> str:
        """prefixItems: the listed items in order (the first minItems of them required), then `items`."""
        heads = [self.schema(s, f"{hint}-{i}") for i, s in enumerate(prefix)]
        more = high - len(heads)
        tail = ""
        if more > 0 and schema.get("items") is not False:
            item = self.schema(schema.get("items"), f"{hint}-item")
            tail = f' ( ws "," ws {item} ){{{max(low - len(heads), 0)},{more}}}'
        # Item i (and everything after it) is optional once i >= minItems: nested groups, opened in
        # order and closed together at the end (a list, so the text is linear in the items).
        parts: list[str] = []
        groups = 0
        for i, head in enumerate(heads):
            if i >= low:
                parts.append("(")
                groups += 1
            parts.append(head if i == 0 else f'ws "," ws {head}')
        body = " ".join(parts) + tail + " )?" * groups
        return self.rule(f'"[" ws {body} ws "]"', hint)

    def render(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        return "\n".join(lines) + "\n"


_MAX_INTEGER = WRITABLE  # the integers the grammar writes have at most 16 digits
_FRACTION = '"." [0-9]{1,16}'
_NONZERO_FRACTION = '"." [0-9]{0,15} [1-9]'
_NONNEG_NUMBER = f"([0-9] | [1-9] [0-9]{{0,15}}) ({_FRACTION})?"
# Days up to 28 only: valid in every month (a narrower language is still only valid values).
_DATE = '[12] [0-9]{3} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | "1" [0-9] | "2" [0-8])'
_TIME = '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? "Z"'
_HEX = "[0-9a-f]"
# format -> grammar of the string's body (longest lengths: schemas.FORMAT_LENGTHS)
_FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f'{_DATE} "T" {_TIME}',
    "uuid": f'{_HEX}{{8}} "-" {_HEX}{{4}} "-" {_HEX}{{4}} "-" {_HEX}{{4}} "-" {_HEX}{{12}}',
}


def _integer_bounds(schema: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Inclusive integer bounds from minimum/maximum/exclusiveMinimum/exclusiveMaximum (draft 6+
    numbers, or draft 4 booleans)."""
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open, high_open = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    lows: list[int] = []
    highs: list[int] = []
    if _is_number(low):
        lows.append(math.floor(low) + 1 if low_open is True and float(low).is_integer() else math.ceil(low))
    if _is_number(low_open):
        lows.append(math.floor(low_open) + 1)
    if _is_number(high):
        exclusive = high_open is True and float(high).is_integer()
        highs.append(math.ceil(high) - 1 if exclusive else math.floor(high))
    if _is_number(high_open):
        highs.append(math.ceil(high_open) - 1)
    return _writable((max(lows) if lows else None), (min(highs) if highs else None))


def _writable(low: int | None, high: int | None) -> tuple[int | None, int | None]:
    """Integral bounds within the 16 digits the grammar writes: a bound beyond them on the far side is
    no bound; bounds that leave no writable integer are refused."""
    if (low is not None and low > _MAX_INTEGER) or (high is not None and high < -_MAX_INTEGER):
        raise SchemaError(f"bounds {low}..{high} leave no number of at most 16 digits")
    if low is not None and high is not None and low > high:
        raise SchemaError(f"no integer lies between the bounds {low}..{high}")
    return (None if low is None or low < -_MAX_INTEGER else low), (
        None if high is None or high > _MAX_INTEGER else high
    )


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_length_range(low: str, high: str) -> list[str]:
    """Alternatives spelling the integers from `low` to `high` (equal-length digit strings)."""
    if low == high:
        return [literal(low)] if low else [""]
    rest = len(low) - 1
    digits = f" [0-9]{{{rest}}}" if rest else ""
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return [f"[{low[0]}-{high[0]}]{digits}"]
    if low[0] == high[0]:
        return [f"{literal(low[0])} {tail}".strip() for tail in _same_length_range(low[1:], high[1:])]
    out = [f"{literal(low[0])} {tail}".strip() for tail in _same_length_range(low[1:], "9" * rest)]
    if int(low[0]) + 1 <= int(high[0]) - 1:
        out.append(f"[{int(low[0]) + 1}-{int(high[0]) - 1}]{digits}")
    out += [f"{literal(high[0])} {tail}".strip() for tail in _same_length_range("0" * rest, high[1:])]
    return out


def _natural_range(low: int, high: int | None) -> str:
    """GBNF for the integers low..high (0 <= low; high None: up to 16 digits), no leading zeros."""
    top = _MAX_INTEGER if high is None else min(high, _MAX_INTEGER)
    out: list[str] = []
    for length in range(len(str(low)), len(str(top)) + 1):
        first = low if length == len(str(low)) else 10 ** (length - 1)
        last = top if length == len(str(top)) else 10**length - 1
        if high is None and length > len(str(low)):
            out.append(f"[1-9] [0-9]{{{length - 1},15}}" if length < 16 else "[1-9] [0-9]{15}")
            break
        out += _same_length_range(str(first), str(last))
    return " | ".join(f"( {alt} )" if " " in alt else alt for alt in out)


def _signed_range(low: int | None, high: int | None, fraction: str | None) -> str:
    """GBNF for the integers low..high (None: unbounded within 16 digits), each followed by `fraction`
    when given."""
    after = f" ({fraction})?" if fraction else ""
    parts: list[str] = []
    if high is None or high >= 0:
        parts.append(f"( {_natural_range(max(low or 0, 0), high)} ){after}")
    if low is None or low < 0:
        magnitude_low = 1 if high is None or high >= 0 else -high
        magnitude_high = None if low is None else -low
        parts.append(f'"-" ( {_natural_range(magnitude_low, magnitude_high)} ){after}')
    return " | ".join(parts)


@dataclass(frozen=True, slots=True)
class _NumberBounds:
    low: int | None
    high: int | None
    low_open: bool
    high_open: bool


def _number_bounds(schema: Mapping[str, Any]) -> _NumberBounds | None:
    """A number's bounds when all are integral (None otherwise); exclusive bounds in either draft's
    spelling (a number, or a boolean next to minimum/maximum)."""
    sides: list[tuple[int | None, bool]] = []
    for closed_key, open_key in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        closed, opened = schema.get(closed_key), schema.get(open_key)
        value, is_open = (opened, True) if _is_number(opened) else (closed, opened is True)
        if value is None:
            sides.append((None, False))
        elif _is_number(value) and float(value).is_integer():
            sides.append((int(value), is_open))
        else:
            return None
    (low, low_open), (high, high_open) = sides
    if (low is not None and low > _MAX_INTEGER) or (high is not None and high < -_MAX_INTEGER):
        raise SchemaError(f"bounds {low}..{high} leave no number of at most 16 digits")
    if low is not None and low < -_MAX_INTEGER:
        low, low_open = None, False
    if high is not None and high > _MAX_INTEGER:
        high, high_open = None, False
    return _NumberBounds(low, high, low_open, high_open)


def _number_range(b: _NumberBounds) -> str:
    """GBNF for the decimal numbers between integral bounds (no exponent). A text with whole part w
    and a fraction lies in [w, w+1) (or in (-(w+1), -w] for "-w..."), so whole parts whose whole
    interval is inside the bounds take any fraction; the bounds themselves are written exactly, or
    with a non-zero fraction when that moves inward."""
    low, high = b.low, b.high
    parts: list[str] = []
    first = 0 if low is None else max(0, low + 1 if b.low_open else low)
    last = None if high is None else high - 1
    if last is None or first <= last:
        parts.append(f"( {_natural_range(first, last)} ) ({_FRACTION})?")
    first = 0 if high is None else max(0, -high + 1 if b.high_open else -high)
    last = None if low is None else -low - 1
    if last is None or first <= last:
        parts.append(f'"-" ( {_natural_range(first, last)} ) ({_FRACTION})?')
    if low is not None and not b.low_open:
        parts.append(f'{literal(str(low))} ("." "0"{{1,16}})?')
    if high is not None and not b.high_open:
        parts.append(f'{literal(str(high))} ("." "0"{{1,16}})?')
    if low is not None and b.low_open and low >= 0 and (high is None or low + 1 <= high):
        parts.append(f"{literal(str(low))} {_NONZERO_FRACTION}")
    if high is not None and b.high_open and high <= 0 and (low is None or high - 1 >= low):
        parts.append(f'"-" {literal(str(-high))} {_NONZERO_FRACTION}')
    return " | ".join(dict.fromkeys(parts))


def _repeated(element: str, low: int, high: int, opener: str, closer: str) -> str:
    """`opener` low..high `element`s separated by commas `closer`."""
    if high <= 0:
        return f"{literal(opener)} ws {literal(closer)}"
    rest = f'( ws "," ws {element} ){{{max(low - 1, 0)},{high - 1}}}'
    inner = f"{element} {rest}" if low > 0 else f"( {element} {rest} )?"
    return f"{literal(opener)} ws {inner} ws {literal(closer)}"


def grammar_for_schema(schema: Mapping[str, Any]) -> str:
    """GBNF whose language is the JSON documents valid for `schema` (within the subset above). A schema
    from a caller must have passed `schemas.checked` first (`tools.call_schema` does that)."""
    builder = _Builder()
    return builder.render(builder.schema(bounded(resolved(schema)), "root-value"))


def prose_or_call_grammar(call: Mapping[str, Any], *, max_prose_chars: int = 4000) -> str:
    """GBNF for tool_choice="auto" with constraints on: either prose that does not open with `{` or
    `[`, or a JSON call valid for the call schema (see tools.call_schema)."""
    builder = _Builder()
    call_rule = builder.schema(bounded(call), "call")
    builder.rules["prose"] = f"[^{{\\[ \\t\\n] [^\\x00]{{0,{max_prose_chars}}}"
    return builder.render(f"{call_rule} | prose")


# What a thought may not contain: JSON openers/closers (the call must be the only JSON in the reply,
# and an unclosed bracket before it would hide it from the parser), backticks (a fence would swallow
# the call) and control characters other than newline.
_THOUGHT_FIRST = "[^{}\\[\\]`\\x00-\\x20]"
_THOUGHT_REST = "[^{}\\[\\]`\\x00-\\x09\\x0B-\\x1F]"


def thought_then_call_grammar(call: Mapping[str, Any], *, max_thought_chars: int = 400) -> str:
    """GBNF for a short free-text thought, then exactly one call valid for the call schema (or an
    array of calls, when the call schema is one), as agents that want text and a call in one reply
    expect. The thought has no brackets or backticks, so `parsing.parse_tool_calls` reads it as the
    content and the JSON after it as the call. Give the call schema a budget of max_tokens minus
    `max_thought_chars` so the call still ends in time."""
    builder = _Builder()
    call_rule = builder.schema(bounded(call), "call")
    builder.rules["thought"] = f"{_THOUGHT_FIRST} {_THOUGHT_REST}{{0,{max(max_thought_chars - 1, 0)}}}"
    return builder.render(f"thought {call_rule}")


def json_thought_then_call_grammar(thought: object, call: Mapping[str, Any]) -> str:
    """GBNF for a JSON thought valid for `thought` (a fitted schema, see tools.thought_constraint), a
    newline, then exactly one call valid for the call schema (or an array of calls), as AutoGPT's
    one-shot agent expects: its "thoughts" object in the content and its command as the call. The parser
    keeps a JSON value that is not a call to an offered tool as content, so the thought stays text as
    long as its schema is not itself a call's shape (name/arguments keys naming an offered tool)."""
    builder = _Builder()
    thought_rule = builder.schema(bounded(resolved(thought)), "thought")
    call_rule = builder.schema(bounded(call), "call")
    return builder.render(f'{thought_rule} "\\n" {call_rule}')


def call_or_answer_grammar(call: Mapping[str, Any], answer: object) -> str:
    """GBNF for tool_choice="auto" with a response_format: a call valid for the call schema, or a
    JSON answer valid for `answer` (the response format's schema, already fitted; see
    tools.answer_constraint). Both may open with `{`: the parser tells them apart by the call's shape
    (only name/arguments keys, and the name of an offered tool)."""
    builder = _Builder()
    call_rule = builder.schema(bounded(call), "call")
    answer_rule = builder.schema(bounded(resolved(answer)), "answer")
    return builder.render(f"{call_rule} | {answer_rule}")
