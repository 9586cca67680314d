"""Tools without a function-calling API: the instruction text, the JSON the model is asked to write,
and the JSON schema that constrains the server's sampling when a call is forced.

The instruction depends only on the tool list, never on `tool_choice` or the turn, so it renders at the
same place in every request and the server's prompt cache keeps it (forcing is done by the schema).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .schemas import (
    ANSWER_MAX_STRING,
    FORMAT_LENGTHS,
    MAX_REF_DEPTH,
    SchemaError,
    checked,
    closed,
    resolution,
    type_names,
)
from .settings import DEFAULT_LIMITS, SchemaLimits
from .tool_signatures import signature_instructions

ToolChoiceMode = Literal["none", "auto", "required", "named"]

INSTRUCTION_FOOTER = (
    "To call a tool, answer with only a JSON object and nothing else: "
    '{"name": "<tool name>", "arguments": {<arguments matching its parameters>}}. '
    "To call several tools at once, answer with a JSON array of such objects. "
    "If no tool is needed, answer normally in plain text."
)


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`tool_choice` normalized: the mode and, for a named function, its name."""

    mode: ToolChoiceMode
    name: str | None = None

    @property
    def forces_call(self) -> bool:
        return self.mode in ("required", "named")


def function_spec(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `function` part of an OpenAI tool (also accepts a bare function dict)."""
    function = tool.get("function")
    return function if isinstance(function, Mapping) else tool


def tool_name(tool: Mapping[str, Any]) -> str:
    name = function_spec(tool).get("name")
    return name if isinstance(name, str) else ""


def normalize_tool_choice(tool_choice: object, tools: Sequence[Mapping[str, Any]]) -> ToolChoice:
    """OpenAI's `tool_choice` forms -> ToolChoice. Raises ValueError for a choice that cannot be honoured."""
    if not tools:
        return ToolChoice("none")
    if tool_choice is None or tool_choice == "auto":
        return ToolChoice("auto")
    if tool_choice in ("none", "required"):
        return ToolChoice(tool_choice)
    if tool_choice == "any":  # Anthropic/Mistral spelling of "required"
        return ToolChoice("required")
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else tool_choice.get("name")
        if isinstance(name, str):
            if name not in {tool_name(t) for t in tools}:
                raise ValueError(f"tool_choice names {name!r}, which is not among the offered tools")
            return ToolChoice("named", name)
    raise ValueError(f"unsupported tool_choice: {tool_choice!r}")


def tool_instructions(tools: Sequence[Mapping[str, Any]], limits: SchemaLimits = DEFAULT_LIMITS) -> str:
    """The system-prompt block that tells the model which tools exist and how to call them: one
    TypeScript-like signature per tool (about half the tokens of a JSON schema line), then the JSON
    answer the parser and the forced-call constraint expect. Raises SchemaError past
    `limits.prompt_bytes`."""
    return signature_instructions(
        [function_spec(tool) for tool in tools], INSTRUCTION_FOOTER, limits.prompt_bytes
    )


def _arguments_value(arguments: object) -> object:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except (ValueError, RecursionError):
            return arguments  # keep what the caller sent, verbatim
    return {} if arguments is None else arguments


def render_tool_calls(tool_calls: Sequence[Mapping[str, Any]]) -> str:
    """An assistant turn's OpenAI `tool_calls` as the very JSON text the model is asked to write."""
    calls = []
    for call in tool_calls:
        spec = function_spec(call)
        calls.append({"name": spec.get("name", ""), "arguments": _arguments_value(spec.get("arguments"))})
    payload: object = calls[0] if len(calls) == 1 else calls
    return json.dumps(payload, ensure_ascii=False)


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


def _fitted(
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


def call_schema(
    tools: Sequence[Mapping[str, Any]],
    choice: ToolChoice,
    *,
    parallel: bool = False,
    budget: int | None = None,
    limits: SchemaLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """JSON schema of a valid reply when a call is forced: one call object (or an array of them when
    parallel calls are allowed) whose `name` is an offered tool and whose `arguments` follow its schema,
    with strings and arrays bounded so the reply always ends, within `budget` tokens when given.
    Raises SchemaError naming the tool whose parameters are refused."""
    if budget is not None and budget <= 0:
        budget = None  # llama.cpp's max_tokens -1 (or 0) means no limit, not a tiny one
    variants = []
    for index, tool in enumerate(tools):
        name = tool_name(tool)
        if choice.mode == "named" and name != choice.name:
            continue
        overhead = len(json.dumps({"name": name, "arguments": None})) + 8
        strict = function_spec(tool).get("strict") is True
        try:
            parameters = _fitted(
                function_spec(tool).get("parameters") or {"type": "object", "properties": {}},
                None if budget is None else max(budget - overhead, 1),
                limits=limits,
                shape=functools.partial(closed, strict=strict),
            )
        except SchemaError as error:
            raise SchemaError(f"tools[{index}] ({name!r}) parameters: {error}") from None
        variants.append(
            {
                "type": "object",
                "properties": {"name": {"const": name}, "arguments": parameters},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    single: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    if parallel and choice.mode != "named":
        return {"type": "array", "items": single, "minItems": 1, "maxItems": MAX_ARRAY_ITEMS}
    return single


def answer_constraint(
    answer: Mapping[str, Any], budget: int | None = None, limits: SchemaLimits = DEFAULT_LIMITS
) -> object:
    """A response_format schema made usable as a constraint: references inlined, strings and arrays
    bounded (more loosely than call arguments: an answer may be prose) and fitted to `budget`."""
    if budget is not None and budget <= 0:
        budget = None
    try:
        return _fitted(answer, budget, ANSWER_MAX_STRING, limits)
    except SchemaError as error:
        raise SchemaError(f"response_format schema: {error}") from None


def thought_constraint(
    thought: Mapping[str, Any], budget: int | None = None, limits: SchemaLimits = DEFAULT_LIMITS
) -> object:
    """A thought schema (`llamafile_thought_schema`) made usable as a constraint: references inlined,
    strings and arrays bounded like call arguments, and fitted to `budget` so the call after it still
    ends within max_tokens."""
    if budget is not None and budget <= 0:
        budget = None
    try:
        return _fitted(thought, budget, limits=limits)
    except SchemaError as error:
        raise SchemaError(f"llamafile_thought_schema: {error}") from None


def call_or_answer_schema(call: Mapping[str, Any], answer: object) -> dict[str, Any]:
    """JSON schema of a reply to tool_choice="auto" with a response_format: a valid call (see
    call_schema) or the structured answer (see answer_constraint), for servers that take a schema."""
    return {"anyOf": [call, answer]}
