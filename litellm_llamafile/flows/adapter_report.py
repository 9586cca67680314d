"""What the adapter did to one chat request, in a few words a caller can see.

The report goes into the response's `_hidden_params["llamafile"]` (SDK callers) and, as `x-llamafile-*`
entries of `_hidden_params["additional_headers"]`, into the LiteLLM proxy's response headers, so an
OpenAI client behind the proxy sees it too (`examples/main_job.py` prints it per turn). Only what the
adapter decided: no message text, no tool name, no key. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..prompt.roles import RoleStrategy
from .request import ChatRequest

HEADER_PREFIX = "x-llamafile-"
HIDDEN_KEY = "llamafile"


def _roles(strategy: RoleStrategy, messages_in: int, turns_out: int) -> str:
    if strategy.system and strategy.consecutive:
        how = "system role and order kept"
    elif strategy.system:
        how = "system role kept, same-role turns merged"
    else:
        how = "system folded into the first user turn, strict user/assistant alternation"
    tools = ", tool turns as text" if not (strategy.tool_role and strategy.tool_calls) else ""
    return f"{strategy.label} ({how}{tools}): {messages_in} messages -> {turns_out} turns"


def _tools(request: ChatRequest) -> str:
    if not request.tools:
        return "none offered"
    count = f"{len(request.tools)} tool{'s' if len(request.tools) != 1 else ''}"
    if request.template_tools:
        return f"{count} in the chat template's own format (llamafile_tool_prompt=native)"
    return f"{count} as signatures in the system text"


def _constraint(request: ChatRequest) -> str:
    payload = request.payload
    mode = request.tool_choice.mode
    if "response_format" in payload:
        fmt = payload["response_format"]
        name = fmt.get("json_schema", {}).get("name") if isinstance(fmt, Mapping) else None
        what = "one valid call" if name == "tool_call" else "a valid call or the asked answer"
        return f"json_schema: {what} (tool_choice={mode})"
    if "grammar" in payload:
        return f"grammar (GBNF) (tool_choice={mode})"
    if request.parses_tools:
        return f"none: the reply is parsed for calls (tool_choice={mode})"
    return "none"


def adapter_report(request: ChatRequest, strategy: RoleStrategy, messages_in: int) -> dict[str, str]:
    """The report of one request: how roles were shaped, how tools were offered, what constrained the
    reply, which endpoint it took."""
    route = "text: /apply-template + /v1/completions" if request.text_route else "chat: /v1/chat/completions"
    return {
        "roles": _roles(strategy, messages_in, len(request.messages)),
        "tools": _tools(request),
        "constraint": _constraint(request),
        "route": route,
    }


def attach_report(hidden_params: dict[str, Any], report: Mapping[str, str]) -> None:
    """Put `report` where SDK callers (`_hidden_params["llamafile"]`) and the proxy's response headers
    (`additional_headers`) carry it."""
    hidden_params[HIDDEN_KEY] = dict(report)
    headers = hidden_params.get("additional_headers")
    merged = dict(headers) if isinstance(headers, Mapping) else {}
    merged.update({f"{HEADER_PREFIX}{key}": value for key, value in report.items()})
    hidden_params["additional_headers"] = merged
