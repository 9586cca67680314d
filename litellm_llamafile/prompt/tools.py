"""Tools without a function-calling API: the tool choice, the instruction text the model reads, and the
JSON a call is written as.

The instruction depends only on the tool list, never on `tool_choice` or the turn, so it renders at the
same place in every request and the server's prompt cache keeps it (forcing is done by the constraint,
`constraints.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..core.settings import DEFAULT_LIMITS, SchemaLimits
from .signatures import signature_instructions

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
