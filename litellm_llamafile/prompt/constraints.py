"""The sampling constraint a tool choice needs, as the field a server honours: a forced call (named,
required, parallel), a thought then a call, a call or a structured answer, prose or a call. Each call's
arguments follow its tool's schema, checked, resolved, closed (`schemas.py`) and bounded to fit
`max_tokens` (`bounds.py`), written as GBNF (`grammar.py`) or as a JSON schema.

Compiling is the costly part of building a request, so `CompiledTools` (one per server) keeps what a
tool list compiles to: an agent sends the same tools every turn.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from ..core.lru import LRU
from ..core.settings import DEFAULT_LIMITS, SchemaLimits
from .bounds import MAX_ARRAY_ITEMS, fitted, worst_case_chars
from .grammar import (
    call_or_answer_grammar,
    grammar_for_schema,
    json_thought_then_call_grammar,
    prose_or_call_grammar,
    thought_then_call_grammar,
)
from .schemas import ANSWER_MAX_STRING, SchemaError, answer_schema, closed
from .tools import ToolChoice, function_spec, tool_name

T = TypeVar("T")


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
            parameters = fitted(
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
        return fitted(answer, budget, ANSWER_MAX_STRING, limits)
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
        return fitted(thought, budget, limits=limits)
    except SchemaError as error:
        raise SchemaError(f"llamafile_thought_schema: {error}") from None


def call_or_answer_schema(call: Mapping[str, Any], answer: object) -> dict[str, Any]:
    """JSON schema of a reply to tool_choice="auto" with a response_format: a valid call (see
    call_schema) or the structured answer (see answer_constraint), for servers that take a schema."""
    return {"anyOf": [call, answer]}


ConstraintField = Literal["json_schema", "grammar"]


CALLER_CONSTRAINTS = ("grammar", "json_schema", "response_format")


THOUGHT_CHARS = 400  # the longest thought `llamafile_constrain_auto="thought"` allows before the call


def _thought_then_call(spec: ConstraintSpec) -> str:
    """The thought mode's grammar: a prose thought (or JSON valid for the thought schema), then the
    call(s) the choice allows. The thought takes at most half of max_tokens, the call the rest, so both
    end."""
    budget = spec.budget
    if spec.thought_schema is None:
        call = spec.calls(None if budget is None else max(budget - THOUGHT_CHARS, 1))
        return thought_then_call_grammar(call, max_thought_chars=THOUGHT_CHARS)
    half = None if budget is None else max(budget // 2, 1)
    thought = thought_constraint(spec.thought_schema, half, spec.limits)
    room = None if budget is None else max(budget - worst_case_chars(thought) - 1, 1)
    return json_thought_then_call_grammar(thought, spec.calls(room))


def answer_format(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema of a caller's response_format (json_schema or json_object), if any."""
    fmt = payload.get("response_format")
    return answer_schema(fmt) if isinstance(fmt, Mapping) else None


class CompiledTools:
    """What compiling a request's tools cost, kept per server (`Server.compiled`): the instruction text of
    a tool list, and the constraint for a tool list, tool choice and budget, each keyed by a hash of
    everything it depends on. An agent sends the same tools every turn, so only its first turn pays.
    Cached values are shared between requests and never mutated."""

    def __init__(self, size: int = 256) -> None:
        self._lock = threading.Lock()
        self._lru = LRU[Any](size)

    def get(self, what: str, inputs: Sequence[object], make: Callable[[], T]) -> T:
        text = json.dumps([what, *inputs], sort_keys=True, default=repr, ensure_ascii=False)
        key = hashlib.blake2b(text.encode(), digest_size=20).digest()
        with self._lock:
            known = self._lru.get(key)
        if known is not None:
            return cast(T, known)
        value = make()
        with self._lock:
            self._lru.put(key, value)
        return value


@dataclass(frozen=True, slots=True)
class ConstraintSpec:
    """Everything a request's sampling constraint depends on, and so the key it is kept under."""

    tools: tuple[Mapping[str, Any], ...]
    choice: ToolChoice
    field: ConstraintField  # the field the server honours
    constrain_auto: bool | str
    thought_schema: Mapping[str, Any] | None
    parallel: bool
    limits: SchemaLimits
    budget: int | None = None  # max_tokens
    answer: Mapping[str, Any] | None = None  # the caller's response_format schema
    caller_constrained: bool = False  # the caller sent a constraint of its own

    @property
    def thought_mode(self) -> bool:
        return self.constrain_auto == "thought" or self.thought_schema is not None

    def calls(self, budget: int | None) -> dict[str, Any]:
        """The schema of the calls the choice allows, fitted to `budget` tokens."""
        return call_schema(self.tools, self.choice, parallel=self.parallel, budget=budget, limits=self.limits)


def with_constraint(payload: dict[str, Any], spec: ConstraintSpec, compiled: CompiledTools) -> dict[str, Any]:
    """The payload with the sampling constraint `spec` needs (see `constraint_fields`), compiled once per
    server and spec; it replaces a caller's own constraint."""
    added = compiled.get("constraint", (spec,), lambda: constraint_fields(spec))
    if not added:
        return payload
    return {**{k: v for k, v in payload.items() if k not in CALLER_CONSTRAINTS}, **added}


def constraint_fields(spec: ConstraintSpec) -> dict[str, Any]:
    """The constraint fields the tool choice needs: a forced call (with or without a thought before it),
    auto with the caller's response_format (call or answer), or constrained auto; none otherwise.
    Raises SchemaError when the constraint would pass `limits.constraint_bytes`."""
    choice, limits = spec.choice, spec.limits
    added: dict[str, Any] = {}
    if choice.forces_call and spec.thought_mode:
        # No JSON schema spells text before a call: a grammar, which every server takes.
        added["grammar"] = _thought_then_call(spec)
    elif choice.forces_call:
        # Constrained sampling makes a forced call always valid; it overrides a caller's own constraint.
        added = _schema_field(spec.calls(spec.budget), "tool_call", spec.field)
    elif choice.mode == "auto" and spec.answer is not None:
        # OpenAI's semantics: the model may call a tool or give the structured answer, so the caller's
        # response_format becomes one alternative of the constraint instead of the whole of it.
        answer = answer_constraint(spec.answer, spec.budget, limits)
        calls = spec.calls(spec.budget)
        if spec.field == "grammar":
            added["grammar"] = call_or_answer_grammar(calls, answer)
        else:
            added = _schema_field(call_or_answer_schema(calls, answer), "call_or_answer", "json_schema")
    elif (spec.constrain_auto or spec.thought_mode) and choice.mode == "auto" and not spec.caller_constrained:
        # a thought, then exactly one call (AutoGPT-style agents); or prose or a call
        thought_mode = spec.thought_mode
        added["grammar"] = (
            _thought_then_call(spec) if thought_mode else prose_or_call_grammar(spec.calls(spec.budget))
        )
    size = len(added["grammar"]) if "grammar" in added else len(json.dumps(added.get("response_format")))
    if size > limits.constraint_bytes:
        raise SchemaError(
            f"the constraint for these tools would be {size} bytes, more than {limits.constraint_bytes} "
            "(limit constraint_max_bytes)"
        )
    return added


def _schema_field(schema: Mapping[str, Any], name: str, constraint: ConstraintField) -> dict[str, Any]:
    """A constraint schema in the field the server honours: GBNF, or OpenAI's response_format."""
    if constraint == "grammar":
        return {"grammar": grammar_for_schema(schema)}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}}
