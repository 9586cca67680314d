"""Where roles are reshaped: OpenAI messages -> the turns a server's chat template accepts.

Two steps, both pure:
1. `to_turns` makes every message plain text with role system/user/assistant: list-of-parts
   content is flattened (a user turn holding images keeps its parts: text and images, in order),
   `tool` results become user turns naming the tool and call id, assistant
   `tool_calls` become the JSON the model is asked to write (a strategy with native tool roles keeps
   those two as they are instead). Bad input raises litellm.BadRequestError naming the message index.
2. A `RoleStrategy` -- the facts of what the template accepts: a system role? two turns of one role in a
   row? an opening assistant turn? -- shapes the turns: system text folds into the first user turn,
   same-role neighbours merge, a first user turn is added, each only where the template needs it.
   `mistral` is the strictest strategy (none of them), `chatml`/`llama3` the most open; `auto` learns
   the facts from the server (template_facts.py).

Tool instructions are appended to the leading system text, so they render at the very start of every
request and the prompt prefix stays identical from turn to turn (the server's prompt cache relies on it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict

from ..core.errors import invalid_request
from ..core.settings import TemplateName
from .tools import function_spec, render_tool_calls

Role = Literal["system", "user", "assistant", "tool"]

# A first user turn for a conversation that would otherwise open with the assistant (Mistral rejects it).
CONVERSATION_START = "(conversation start)"
TURN_SEPARATOR = "\n\n"


# One part of list content as sent: {"type": "text", "text": ...} or {"type": "image_url", ...}.
ContentPart = dict[str, Any]
Content = str | list[ContentPart]


class WireMessage(TypedDict):
    role: Role
    content: Content  # a list only for a user turn that holds image parts
    # Only with a strategy that renders tool turns natively (`tool_role` / `tool_calls`):
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


@dataclass(frozen=True, slots=True)
class RoleStrategy:
    """What the server's chat template accepts, as far as reshaping is concerned."""

    system: bool = False  # a `system` turn renders; else its text folds into the first user turn
    consecutive: bool = False  # two turns of the same role in a row render; else they merge
    assistant_first: bool = False  # the turns after the system text may open with the assistant
    tool_role: bool = False  # `tool` results go through as `tool` messages, not as user text
    tool_calls: bool = False  # assistant `tool_calls` go through as they are, not as JSON text

    @property
    def label(self) -> str:
        """A short name for logs and reports: `mistral`/`chatml` when it is one of those."""
        if self == STRICT:
            return "mistral"
        if self == OPEN:
            return "chatml"
        allowed = [
            name
            for name, on in (
                ("system", self.system),
                ("consecutive", self.consecutive),
                ("assistant_first", self.assistant_first),
                ("tool_role", self.tool_role),
                ("tool_calls", self.tool_calls),
            )
            if on
        ]
        return f"learned({'+'.join(allowed)})"

    @property
    def value(self) -> str:
        """A stable key, like TemplateName.value (token-count caches key on it): the same for the same
        facts, `mistral`/`chatml` for the two named strategies."""
        return self.label


# Every template accepts this shape: user first, strict alternation, no system role (Mistral v0.1/v0.2).
STRICT = RoleStrategy()
# ChatML, Llama 3 and most modern templates: any order, system kept; tools still as text.
OPEN = RoleStrategy(system=True, consecutive=True, assistant_first=True)


def strategy_for(template: TemplateName | RoleStrategy) -> RoleStrategy:
    """The strategy an explicit `llamafile_template=` names (a RoleStrategy is returned as is).
    AUTO must be resolved by the caller; here it keeps the historic open behaviour."""
    if isinstance(template, RoleStrategy):
        return template
    return STRICT if template is TemplateName.MISTRAL else OPEN


def _as_mapping(message: object, index: int) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)  # litellm.Message / pydantic objects
    if callable(dump):
        dumped = dump()
        if isinstance(dumped, Mapping):
            return dumped
    raise invalid_request(f"messages[{index}] is a {type(message).__name__}, not a message object")


def _text_parts(content: list[object], index: int, *, images: bool) -> list[ContentPart]:
    """List content as typed parts; image parts only where `images` (user turns), checked for a URL."""
    parts: list[ContentPart] = []
    for part_index, part in enumerate(content):
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
            continue
        if not isinstance(part, Mapping):
            raise invalid_request(
                f"messages[{index}].content[{part_index}] is a {type(part).__name__} part; "
                "expected text or image_url"
            )
        part_type = part.get("type")
        if part_type == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
            continue
        if part_type == "image_url" and images:
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if not isinstance(url, str) or not url:
                raise invalid_request(
                    f"messages[{index}].content[{part_index}] is an image_url part without a url"
                )
            parts.append(
                {
                    "type": "image_url",
                    "image_url": dict(image) if isinstance(image, Mapping) else {"url": url},
                }
            )
            continue
        where = (
            "only a user message may hold images"
            if part_type == "image_url"
            else "expected text or image_url"
        )
        raise invalid_request(
            f"messages[{index}].content[{part_index}] is a {part_type or type(part).__name__!s} part; {where}"
        )
    return parts


def _join_text(parts: Sequence[ContentPart]) -> str:
    return "\n".join(part["text"] for part in parts)


def flatten_content(content: object, index: int, *, allow_none: bool = False) -> str:
    """String content, or the text parts of list content joined by newlines."""
    if isinstance(content, str):
        return content
    if content is None and allow_none:
        return ""
    if isinstance(content, list):
        return _join_text(_text_parts(content, index, images=False))
    raise invalid_request(
        f"messages[{index}].content must be a string or a list of text parts, not {type(content).__name__}"
    )


def user_content(content: object, index: int) -> Content:
    """A user turn's content: text as `flatten_content` makes it, or, when it holds images, its parts in
    order (image parts as given), so the server sees each image where the user put it."""
    if not isinstance(content, list):
        return flatten_content(content, index)
    parts = _text_parts(content, index, images=True)
    if not any(part["type"] == "image_url" for part in parts):
        return _join_text(parts)
    return _coalesced(parts, "\n")  # neighbouring text parts joined by newlines, as flatten_content does


def _coalesced(parts: Iterable[ContentPart], joiner: str) -> list[ContentPart]:
    """Each run of neighbouring text parts as one text part (`joiner` between them), images in place.
    A run is joined once, at its end: linear in the text however many parts it has."""
    out: list[ContentPart] = []
    run: list[str] = []
    for part in parts:
        if part["type"] == "text":
            run.append(part["text"])
            continue
        if run:
            out.append({"type": "text", "text": joiner.join(run)})
            run = []
        out.append(part)
    if run:
        out.append({"type": "text", "text": joiner.join(run)})
    return out


def image_count(content: Content) -> int:
    return 0 if isinstance(content, str) else sum(part["type"] == "image_url" for part in content)


def has_images(turns: Sequence[WireMessage]) -> bool:
    return any(image_count(turn["content"]) for turn in turns)


def text_of(content: Content) -> str:
    """The text of a turn's content, images left out (for keys and token counts)."""
    return content if isinstance(content, str) else _join_text([p for p in content if p["type"] == "text"])


def join_contents(contents: Sequence[Content], separator: str) -> Content:
    """Merged turns' contents, `separator` between them: text stays text; with images, one part list in
    order, neighbouring text parts joined into one."""
    if all(isinstance(content, str) for content in contents):
        return separator.join(content for content in contents if isinstance(content, str))

    def in_order() -> Iterator[ContentPart]:
        for number, content in enumerate(contents):
            if number:
                yield {"type": "text", "text": separator}
            yield from [{"type": "text", "text": content}] if isinstance(content, str) else content

    return _coalesced(in_order(), "")


def _tool_result_text(message: Mapping[str, Any], index: int, names_by_id: Mapping[str, str]) -> str:
    call_id = message.get("tool_call_id")
    name = message.get("name") or (names_by_id.get(call_id, "") if isinstance(call_id, str) else "")
    label = f"Result of tool {name or 'call'}" + (f" (call {call_id})" if call_id else "")
    return f"{label}:\n{flatten_content(message.get('content'), index, allow_none=True)}"


def _native_call(call: Mapping[str, Any]) -> dict[str, Any]:
    """One OpenAI tool call as the template receives it: arguments as a JSON string, id when given."""
    function = function_spec(call)
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps({} if arguments is None else arguments, ensure_ascii=False)
    native: dict[str, Any] = {
        "type": "function",
        "function": {"name": str(function.get("name", "")), "arguments": arguments},
    }
    if isinstance(call.get("id"), str):
        native["id"] = call["id"]
    return native


def _native_tool_result(
    message: Mapping[str, Any], index: int, names_by_id: Mapping[str, str]
) -> WireMessage:
    result: WireMessage = {
        "role": "tool",
        "content": flatten_content(message.get("content"), index, allow_none=True),
    }
    call_id = message.get("tool_call_id")
    if isinstance(call_id, str):
        result["tool_call_id"] = call_id
    name = message.get("name") or (names_by_id.get(call_id, "") if isinstance(call_id, str) else "")
    if name:
        result["name"] = str(name)
    return result


def to_text_turns(messages: Sequence[object]) -> list[WireMessage]:
    """OpenAI chat messages -> plain-text turns with roles system/user/assistant, nothing dropped."""
    return to_turns(messages, STRICT)


def to_turns(messages: Sequence[object], strategy: RoleStrategy) -> list[WireMessage]:
    """OpenAI chat messages -> turns: plain text, except tool results and assistant calls where the
    strategy renders them natively. Nothing is dropped."""
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
            turns.append({"role": "user", "content": user_content(message.get("content"), index)})
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
                if strategy.tool_calls:
                    turns.append(
                        {"role": "assistant", "content": text, "tool_calls": [_native_call(c) for c in calls]}
                    )
                    continue
                rendered = render_tool_calls(calls)
                text = f"{text}\n{rendered}" if text.strip() else rendered
            turns.append({"role": "assistant", "content": text})
        elif role in ("tool", "function") and strategy.tool_role:
            turns.append(_native_tool_result(message, index, names_by_id))
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


def shape_turns(turns: Sequence[WireMessage], strategy: RoleStrategy) -> list[WireMessage]:
    """Shape text turns for `strategy`, in order, nothing dropped: system text becomes user text where
    the template has no system role (folding into the neighbouring user turn), same-role text neighbours
    merge where the template wants alternation, and a conversation opening with the assistant gets a
    user turn first where the template wants that. Native tool turns are never merged."""
    shaped: list[WireMessage] = []
    pieces: list[list[Content]] = []  # per shaped turn: its contents, joined once at the end (linear time)
    folded: list[bool] = []  # per shaped turn: holds system text made user text (always merges)
    for turn in turns:
        role = turn["role"]
        from_system = role == "system" and not strategy.system
        if from_system:
            role = "user"
        native = role == "tool" or "tool_calls" in turn
        last = shaped[-1] if shaped else None
        mergeable = (
            last is not None
            and not native
            and last["role"] == role
            and "tool_calls" not in last
            and role != "tool"
            and (not strategy.consecutive or from_system or folded[-1])
        )
        if last is not None and mergeable:
            pieces[-1].append(turn["content"])
            folded[-1] = folded[-1] and from_system
        else:
            shaped.append({**turn, "role": role})
            pieces.append([turn["content"]])
            folded.append(from_system)
    for turn, texts in zip(shaped, pieces, strict=True):
        if len(texts) > 1:
            turn["content"] = join_contents(texts, TURN_SEPARATOR)
    if not strategy.assistant_first:
        opening = next((i for i, t in enumerate(shaped) if t["role"] != "system"), None)
        if opening is not None and shaped[opening]["role"] in ("assistant", "tool"):
            shaped.insert(opening, {"role": "user", "content": CONVERSATION_START})
    return shaped


def alternate_for_mistral(turns: Sequence[WireMessage]) -> list[WireMessage]:
    """No system role, user first, strict user/assistant alternation (the STRICT strategy)."""
    return shape_turns(turns, STRICT)


def reshape_messages(
    messages: Sequence[object],
    template: TemplateName | RoleStrategy,
    *,
    system_preamble: str | None = None,
) -> list[WireMessage]:
    """The messages to send for `template` (a resolved name, not AUTO, or a learned RoleStrategy),
    with tool instructions."""
    strategy = strategy_for(template)
    return shape_turns(with_system_preamble(to_turns(messages, strategy), system_preamble), strategy)


def reshape_turns(
    turns: list[WireMessage], template: TemplateName | RoleStrategy, *, system_preamble: str | None = None
) -> list[WireMessage]:
    """`reshape_messages` for plain-text turns already made by `to_text_turns` (a strategy that renders
    tool results or calls natively needs the messages themselves: `reshape_messages`)."""
    return shape_turns(with_system_preamble(turns, system_preamble), strategy_for(template))


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
