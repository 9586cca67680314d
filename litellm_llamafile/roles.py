"""Where roles are reshaped: OpenAI messages -> the turns a server's chat template accepts.

Two steps, both pure:
1. `to_text_turns` makes every message plain text with role system/user/assistant: list-of-parts
   content is flattened, `tool` results become user turns naming the tool and call id, assistant
   `tool_calls` become the JSON the model is asked to write. Bad input raises litellm.BadRequestError
   naming the message index.
2. A template strategy shapes the turns: `mistral` (no system role, strict user/assistant alternation,
   starting with user) folds and merges; `chatml` (ChatML, Llama-3 and other templates that accept
   `system`) leaves the order alone.

Tool instructions are appended to the leading system text, so they render at the very start of every
request and the prompt prefix stays identical from turn to turn (the server's prompt cache relies on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from .errors import invalid_request
from .settings import TemplateName
from .tools import render_tool_calls

Role = Literal["system", "user", "assistant"]

# A first user turn for a conversation that would otherwise open with the assistant (Mistral rejects it).
CONVERSATION_START = "(conversation start)"
TURN_SEPARATOR = "\n\n"


class WireMessage(TypedDict):
    role: Role
    content: str


def _as_mapping(message: object, index: int) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)  # litellm.Message / pydantic objects
    if callable(dump):
        dumped = dump()
        if isinstance(dumped, Mapping):
            return dumped
    raise invalid_request(f"messages[{index}] is a {type(message).__name__}, not a message object")


def flatten_content(content: object, index: int, *, allow_none: bool = False) -> str:
    """String content, or the text parts of list content joined by newlines."""
    if isinstance(content, str):
        return content
    if content is None and allow_none:
        return ""
    if isinstance(content, list):
        texts: list[str] = []
        for part_index, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
                continue
            part_type = part.get("type") if isinstance(part, Mapping) else None
            if part_type == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
                continue
            raise invalid_request(
                f"messages[{index}].content[{part_index}] is a {part_type or type(part).__name__!s} part; "
                "llamafile models here take text only"
            )
        return "\n".join(texts)
    raise invalid_request(
        f"messages[{index}].content must be a string or a list of text parts, not {type(content).__name__}"
    )


def _tool_result_text(message: Mapping[str, Any], index: int, names_by_id: Mapping[str, str]) -> str:
    call_id = message.get("tool_call_id")
    name = message.get("name") or (names_by_id.get(call_id, "") if isinstance(call_id, str) else "")
    label = f"Result of tool {name or 'call'}" + (f" (call {call_id})" if call_id else "")
    return f"{label}:\n{flatten_content(message.get('content'), index, allow_none=True)}"


def to_text_turns(messages: Sequence[object]) -> list[WireMessage]:
    """OpenAI chat messages -> plain-text turns with roles system/user/assistant, nothing dropped."""
    if not messages:
        raise invalid_request("messages is empty: a chat request needs at least one message")
    turns: list[WireMessage] = []
    names_by_id: dict[str, str] = {}
    for index, raw in enumerate(messages):
        message = _as_mapping(raw, index)
        role = message.get("role")
        if role in ("system", "developer"):
            turns.append({"role": "system", "content": flatten_content(message.get("content"), index)})
        elif role == "user":
            turns.append({"role": "user", "content": flatten_content(message.get("content"), index)})
        elif role == "assistant":
            text = flatten_content(message.get("content"), index, allow_none=True)
            calls = message.get("tool_calls") or []
            legacy = message.get("function_call")
            if legacy and not calls:
                calls = [{"type": "function", "function": legacy}]
            if calls:
                for call in calls:
                    function = call.get("function") if isinstance(call, Mapping) else None
                    if not isinstance(function, Mapping):
                        raise invalid_request(f"messages[{index}].tool_calls has an entry without a function")
                    if isinstance(call.get("id"), str):
                        names_by_id[call["id"]] = str(function.get("name", ""))
                rendered = render_tool_calls(calls)
                text = f"{text}\n{rendered}" if text.strip() else rendered
            turns.append({"role": "assistant", "content": text})
        elif role in ("tool", "function"):
            turns.append({"role": "user", "content": _tool_result_text(message, index, names_by_id)})
        else:
            raise invalid_request(
                f"messages[{index}] has role {role!r}; expected system, developer, user, assistant or tool"
            )
    return turns


def with_system_preamble(turns: list[WireMessage], preamble: str | None) -> list[WireMessage]:
    """Append `preamble` (tool instructions) to the leading system text, or open with it."""
    if not preamble:
        return turns
    if turns and turns[0]["role"] == "system":
        first: WireMessage = {"role": "system", "content": f"{turns[0]['content']}{TURN_SEPARATOR}{preamble}"}
        return [first, *turns[1:]]
    return [{"role": "system", "content": preamble}, *turns]


def alternate_for_mistral(turns: Sequence[WireMessage]) -> list[WireMessage]:
    """No system role, user first, strict user/assistant alternation: system text becomes user text
    (so leading system text folds into the first user turn) and same-role neighbours merge, in order."""
    shaped: list[WireMessage] = []
    for turn in turns:
        role: Role = "assistant" if turn["role"] == "assistant" else "user"
        if shaped and shaped[-1]["role"] == role:
            shaped[-1] = {
                "role": role,
                "content": f"{shaped[-1]['content']}{TURN_SEPARATOR}{turn['content']}",
            }
        else:
            shaped.append({"role": role, "content": turn["content"]})
    if shaped and shaped[0]["role"] == "assistant":
        shaped.insert(0, {"role": "user", "content": CONVERSATION_START})
    return shaped


def reshape_messages(
    messages: Sequence[object], template: TemplateName, *, system_preamble: str | None = None
) -> list[WireMessage]:
    """The messages to send for `template` (already resolved: not AUTO), with tool instructions."""
    return reshape_turns(to_text_turns(messages), template, system_preamble=system_preamble)


def reshape_turns(
    turns: list[WireMessage], template: TemplateName, *, system_preamble: str | None = None
) -> list[WireMessage]:
    """`reshape_messages` for turns already made by `to_text_turns`."""
    shaped = with_system_preamble(turns, system_preamble)
    if template is TemplateName.MISTRAL:
        return alternate_for_mistral(shaped)
    return shaped


def template_from_chat_template(
    chat_template: str | None, supports_system_role: bool | None = None
) -> TemplateName:
    """Pick the strategy from the Jinja template the server reports in GET /props (and, on newer
    llama-server builds, its `chat_template_caps.supports_system_role`).

    A template that raises on a role or on non-alternation, one without a system role, or Mistral's
    [INST] format without a system branch gets the strict strategy; one that renders `system` is left alone.
    """
    if not chat_template:
        return TemplateName.MISTRAL  # unknown: the strict shape is accepted by every template
    lowered = chat_template.lower()
    strict_markers = ("must alternate", "only user and assistant", "roles are supported")
    if any(marker in lowered for marker in strict_markers) or supports_system_role is False:
        return TemplateName.MISTRAL
    if "<|start_header_id|>" in chat_template:
        return TemplateName.LLAMA3
    if "<|im_start|>" in chat_template:
        return TemplateName.CHATML
    if "[inst]" in lowered and "system" not in lowered:
        return TemplateName.MISTRAL
    if "system" in lowered:
        return TemplateName.CHATML
    return TemplateName.MISTRAL
