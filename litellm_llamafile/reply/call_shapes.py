"""Decoded values -> (name, arguments) calls: the key spellings models use, pythonic calls, safe decoding.

Shared by the generic JSON scanner (parsing.py) and the family parsers (families.py). Nothing here raises
on model output: every decoder catches the errors deep or broken input can cause (RecursionError too).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

Call = tuple[str, str]  # (tool name, arguments as a JSON object string)

# Keys under which models spell a call's name and arguments.
NAME_KEYS = ("name", "tool", "tool_name", "function")
ARGUMENT_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
ALLOWED_KEYS = frozenset({*NAME_KEYS, *ARGUMENT_KEYS, "type", "id", "index", "tool_call_id"})
MAX_PYTHONIC_CHARS = 100_000  # a pythonic call list longer than this is not a call (ast cost bound)

_DECODER = json.JSONDecoder()


def loads(text: str) -> tuple[bool, object]:
    """(ok, value) of a JSON text; deep nesting counts as invalid instead of raising."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def decode_at(text: str, pos: int) -> tuple[object, int] | None:
    """The JSON value starting at `pos` (after whitespace) and where it ends, or None."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    try:
        return _DECODER.raw_decode(text, pos)
    except (ValueError, RecursionError):
        return None


def dumps(value: object) -> str | None:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return None


def as_arguments(value: object) -> str | None:
    """A call's arguments as a JSON object string; a string is decoded; anything else is no call."""
    if value is None:
        return "{}"
    if isinstance(value, str):
        if not value.strip():
            return "{}"
        ok, value = loads(value)
        if not ok:
            return None
    if isinstance(value, Mapping):
        return dumps(value)
    return None


def as_call(value: object, names: frozenset[str]) -> Call | None:
    """(name, arguments) if `value` is a call to an offered tool in one of the common spellings."""
    if not isinstance(value, Mapping) or not set(value) <= ALLOWED_KEYS:
        return None
    function = value.get("function")
    if isinstance(function, Mapping):  # OpenAI shape: {"type": "function", "function": {...}}
        return as_call(function, names)
    name = next((value[k] for k in NAME_KEYS if isinstance(value.get(k), str)), None)
    if name not in names:
        return None
    raw_arguments = next((value[k] for k in ARGUMENT_KEYS if k in value), None)
    arguments = as_arguments(raw_arguments)
    return None if arguments is None else (name, arguments)


def calls_in_json(value: object, names: frozenset[str]) -> list[Call] | None:
    """All calls in a decoded JSON value, or None unless every element is a valid call."""
    if isinstance(value, Mapping) and set(value) == {"tool_calls"}:
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    if not items:
        return None
    calls = [as_call(item, names) for item in items]
    if any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def calls_in_json_text(text: str, names: frozenset[str]) -> list[Call] | None:
    ok, value = loads(text.strip())
    return calls_in_json(value, names) if ok else None


def scalar_or_json(text: str) -> object:
    """An XML-style parameter value: JSON when it is JSON (numbers, objects, true...), else the string."""
    stripped = text.strip()
    if stripped[:1] in '{["-0123456789tfn':
        ok, value = loads(stripped)
        if ok:
            return value
    return text


def pythonic_calls(text: str, names: frozenset[str]) -> list[Call] | None:
    """`[f(a=1), g()]`, `f(a=1)` or Llama 3.1's `tool.call(a=1)`: keyword arguments with literal values."""
    if len(text) > MAX_PYTHONIC_CHARS or not text.strip():
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
        nodes = tree.body.elts if isinstance(tree.body, (ast.List, ast.Tuple)) else [tree.body]
        calls: list[Call] = []
        for node in nodes:
            call = _pythonic_call(node, names)
            if call is None:
                return None
            calls.append(call)
    except Exception:
        return None
    return calls or None


def _pythonic_call(node: ast.expr, names: frozenset[str]) -> Call | None:
    if not isinstance(node, ast.Call) or node.args:
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "call" and isinstance(func.value, ast.Name):
        name = func.value.id  # Llama 3.1 built-in tools: brave_search.call(query="...")
    elif isinstance(func, ast.Name):
        name = func.id
    else:
        return None
    if name not in names:
        return None
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        arguments[keyword.arg] = ast.literal_eval(keyword.value)
    encoded = dumps(arguments)
    return None if encoded is None else (name, encoded)
