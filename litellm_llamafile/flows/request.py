"""One chat request, described once: the `RequestProfile` (how this call asks its server, from the
settings and what the `Server` knows) and `build_chat_request`, which turns the caller's conversation
and parameters into the `ChatRequest` every path uses: sending it (chat endpoint or text route),
counting its prompt, capping it by a fair share, parsing its reply. Pure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.errors import invalid_request, refuses_input
from ..core.settings import DEFAULT_LIMITS, LlamafileSettings, SchemaLimits, TemplateName
from ..prompt.constraints import (
    CALLER_CONSTRAINTS,
    CompiledTools,
    ConstraintField,
    ConstraintSpec,
    answer_format,
    with_constraint,
)
from ..prompt.conversation import Conversation, affinity_slot
from ..prompt.roles import RoleStrategy, WireMessage, has_images
from ..prompt.schemas import SchemaError, checked
from ..prompt.tools import ToolChoice, normalize_tool_choice, tool_instructions, tool_name
from ..reply.families import NO_EXPECTATION, ReplyExpectation
from ..reply.offered import Offered
from ..server.probe import chosen_template, native_tools
from ..server.servers import Knowledge, Server

# Parameters the adapter consumes itself; everything else is forwarded to the server as is
# (llama.cpp accepts OpenAI's sampling fields plus its own: top_k, min_p, grammar, json_schema, ...).
_CONSUMED = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "stream", "stream_options"}
)


@dataclass(frozen=True, slots=True)
class RequestProfile:
    """How one call asks its server, decided once from the settings and what the `Server` knows (its
    template facts, a reply reader that refused): everything a chat request depends on besides the
    caller's messages and parameters. Sending, counting and the fair share build their request from
    the same profile, so the prompt counted is the prompt sent.

    `constraint` is the field the server honours for constrained sampling: `json_schema` (sent as
    OpenAI's response_format, which llama-server and llamafiler accept) or `grammar` (GBNF). The thought
    mode (`constrain_auto="thought"`, or a `thought_schema`) puts a thought before every call.
    `native_tools`: the chat template renders the offered tools (its own format) instead of the
    adapter's instructions (ChatRequest.template_tools); `past_reader`: past the server's reply reader
    (ChatRequest.past_reader). Neither applies to a request with images."""

    strategy: TemplateName | RoleStrategy = TemplateName.MISTRAL  # resolved: never AUTO or LEARN
    constraint: ConstraintField = "json_schema"
    expect: ReplyExpectation = NO_EXPECTATION
    native_tools: bool = False
    past_reader: bool = False
    constrain_auto: bool | str = False
    thought_schema: Mapping[str, Any] | None = None
    slots: int | None = None  # slot affinity: the server's slot count
    limits: SchemaLimits = DEFAULT_LIMITS
    # The server's cache of compiled tool lists (Server.compiled); one of its own when not given.
    compiled: CompiledTools = field(default_factory=lambda: CompiledTools(size=4), compare=False)
    routed: bool = False  # the server is a router: side calls name the model (ChatRequest.routed)


def profile_for(
    server: Server, settings: LlamafileSettings, known: Knowledge | None, model: str = ""
) -> RequestProfile:
    """The profile of a call with these settings for `model` at `server`, given what is known about the
    model it reaches (None: nothing), with the server's cache of compiled tools."""
    info = known.info if known is not None else None
    return RequestProfile(
        strategy=chosen_template(settings, info),
        constraint=info.constraint if info is not None else "grammar",
        expect=info.reply if info is not None else NO_EXPECTATION,
        native_tools=native_tools(settings, info),
        past_reader=known.reader_refuses if known is not None else False,
        constrain_auto=settings.constrain_auto,
        thought_schema=settings.thought_schema,
        slots=info.total_slots if settings.slot_affinity and info is not None else None,
        limits=settings.schema_limits,
        compiled=server.compiled,
        routed=bool(server.route(model)),
    )


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A prepared request: the body to send and what the response parser needs to know."""

    payload: dict[str, Any]
    messages: list[WireMessage]
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: ToolChoice = field(default_factory=lambda: ToolChoice("none"))
    expect: ReplyExpectation = NO_EXPECTATION
    # Tools the chat template renders itself (tool_prompt="native"): the prompt then comes from
    # /apply-template and goes to /v1/completions, since llama-server takes no grammar beside `tools`.
    template_tools: tuple[Mapping[str, Any], ...] = ()
    # Past the server's reply reader (/apply-template, then /v1/completions) though the tools are the
    # adapter's: the server's reader refused a reply before (Server.reader_refuses).
    past_reader: bool = False
    # The server is a router (several models behind the URL, picked by `model`): the bodies of the
    # /apply-template and /tokenize calls made for this request name the model too.
    routed: bool = False

    @property
    def text_route(self) -> bool:
        """Sent as a rendered prompt to /v1/completions rather than as messages to the chat endpoint."""
        return self.past_reader or bool(self.template_tools)

    @property
    def parses_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice.mode != "none"

    @property
    def offered(self) -> Offered:
        """The offered tools with their parameter types, as the reply parser reads them."""
        return Offered.of(self.tools) if self.parses_tools else Offered()


def no_thinking(kwargs: object) -> dict[str, Any]:
    """`chat_template_kwargs` for a constrained reply on a thinking template: thinking off (llama-server
    then closes a think block the template opens, and a Qwen3-style template renders an empty one), so
    the grammar or schema applies to the reply itself, not to a think block the server would file as
    reasoning_content. The caller's own kwargs, an explicit `enable_thinking` included, win."""
    return {"enable_thinking": False, **(kwargs if isinstance(kwargs, Mapping) else {})}


# The chat fields /v1/completions has no use for: the prompt replaces them (see template_body).
_CHAT_ROUTE_ONLY = frozenset(
    {"messages", "tools", "tool_choice", "parallel_tool_calls", "response_format", "chat_template_kwargs"}
    | {"reasoning_format"}
)


def template_body(request: ChatRequest) -> dict[str, Any]:
    """The POST /apply-template body that renders exactly the prompt `request` would get: its wire
    messages, the tools the template renders itself, and the template switches it sends (thinking off
    renders a closed block)."""
    body: dict[str, Any] = {"messages": request.messages}
    if request.routed:
        body["model"] = request.payload.get("model")
    if request.template_tools:
        body["tools"] = [dict(t) for t in request.template_tools]
    for key in ("chat_template_kwargs", "reasoning_format"):
        if key in request.payload:
            body[key] = request.payload[key]
    return body


def text_route_body(payload: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    """A chat payload as a /v1/completions body for its rendered `prompt`: the same sampling and the
    same constraint (a json_schema response_format becomes llama-server's own `json_schema` field)."""
    body = {k: v for k, v in payload.items() if k not in _CHAT_ROUTE_ONLY}
    schema = answer_format(payload)
    if schema is not None and "grammar" not in body:
        body["json_schema"] = schema
    body["prompt"] = prompt
    return body


def _tools_from(params: Mapping[str, Any], limits: SchemaLimits) -> tuple[list[Mapping[str, Any]], object]:
    tools = list(params.get("tools") or [])
    tool_choice = params.get("tool_choice")
    if not tools and params.get("functions"):  # legacy functions API
        tools = [{"type": "function", "function": f} for f in params["functions"]]
        function_call = params.get("function_call")
        if function_call is not None:
            tool_choice = function_call if isinstance(function_call, str) else {"function": function_call}
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("function", tool).get("name"), str):
            raise invalid_request(f"tools[{index}] is not a function tool with a name")
        try:  # every offered schema, whatever the tool choice: it is sent or written into the prompt
            checked(tool.get("function", tool).get("parameters"), limits)
        except SchemaError as error:
            raise SchemaError(f"tools[{index}] ({tool_name(tool)!r}) parameters: {error}") from None
    return tools, tool_choice


def _schemas_refused_as_bad_requests(build: Callable[..., ChatRequest]) -> Callable[..., ChatRequest]:
    @functools.wraps(build)
    def wrapped(model: str, *args: Any, **kwargs: Any) -> ChatRequest:
        try:
            return build(model, *args, **kwargs)
        except SchemaError as error:
            raise invalid_request(f"schema refused: {error}", model) from None

    return wrapped


@refuses_input("the request (its messages, tools, tool_choice or parameters)")
@_schemas_refused_as_bad_requests
def build_chat_request(
    model: str,
    conversation: Conversation,
    params: Mapping[str, Any],
    profile: RequestProfile,
    *,
    stream: bool = False,
) -> ChatRequest:
    """LiteLLM call -> server request: roles reshaped, tool instructions in the leading system text,
    the constraint the tool choice needs, the template switches of a thinking template. A schema the
    constraint or the instructions cannot use, or one past the profile's limits, is the caller's
    BadRequestError, raised before anything is sent."""
    tools, raw_choice = _tools_from(params, profile.limits)
    try:
        choice = normalize_tool_choice(raw_choice, tools)
    except ValueError as error:
        raise invalid_request(str(error), model) from None
    offered = tools if choice.mode != "none" else []
    # Both take the text route, and a rendered prompt holds no image data: a request with images keeps
    # the chat endpoint and the generic instructions.
    text_ok = not has_images(conversation.turns)
    native = profile.native_tools and bool(offered) and text_ok
    wire = conversation.reshaped(profile.strategy, _instructions(offered, profile) if not native else None)
    payload: dict[str, Any] = {k: v for k, v in params.items() if k not in _CONSUMED and v is not None}
    if "max_completion_tokens" in payload:
        payload.setdefault("max_tokens", payload.pop("max_completion_tokens"))
    spec = ConstraintSpec(
        tools=tuple(offered),
        choice=choice,
        field=profile.constraint,
        constrain_auto=profile.constrain_auto,
        thought_schema=profile.thought_schema,
        parallel=params.get("parallel_tool_calls") is True,
        limits=profile.limits,
        budget=payload.get("max_tokens") if isinstance(payload.get("max_tokens"), int) else None,
        answer=answer_format(payload),
        caller_constrained=any(k in payload for k in CALLER_CONSTRAINTS),
    )
    payload = with_constraint({**payload, "model": model, "messages": wire}, spec, profile.compiled)
    payload, expect = _template_switches(payload, profile.expect, offers_tools=bool(tools))
    if profile.slots and "id_slot" not in payload:
        payload["id_slot"] = affinity_slot(conversation, profile.slots)
    if stream:
        payload.update(stream=True, stream_options={"include_usage": True})
    return ChatRequest(
        payload=payload,
        messages=wire,
        tools=tuple(offered),
        tool_choice=choice,
        expect=expect,
        template_tools=tuple(offered) if native else (),
        past_reader=profile.past_reader and text_ok,
        routed=profile.routed,
    )


def _instructions(offered: Sequence[Mapping[str, Any]], profile: RequestProfile) -> str | None:
    """The tool instructions for the leading system text (compiled once per tool list and server)."""
    if not offered:
        return None
    limits = profile.limits
    return profile.compiled.get("instructions", (offered, limits), lambda: tool_instructions(offered, limits))


def _template_switches(
    payload: dict[str, Any], expect: ReplyExpectation, *, offers_tools: bool
) -> tuple[dict[str, Any], ReplyExpectation]:
    """The payload with the switches a thinking template needs, and what its reply will look like."""
    if expect.thinks:
        # The adapter reads every reply itself: llama-server's own reader for a thinking template's
        # format answers HTTP 500 to a reply not in that shape (muse-glimmer, Solar Open, Kimi K3).
        payload.setdefault("reasoning_format", "none")
    constrained = any(k in payload for k in CALLER_CONSTRAINTS)
    if expect.thinks and (offers_tools or constrained):
        # Thinking off on every turn that offers tools, not only the constrained ones: a template
        # that renders the switch into its system block (SmolLM3, Gemma 4) would otherwise re-render
        # the whole prompt between an agent's forced and auto turns, losing the prompt cache.
        payload["chat_template_kwargs"] = no_thinking(payload.get("chat_template_kwargs"))
    if expect.reads_effort and payload.get("reasoning_effort") is not None:
        # LiteLLM's reasoning_effort, where the template reads it (a template variable, not a field).
        kwargs = payload.get("chat_template_kwargs")
        payload["chat_template_kwargs"] = {
            "reasoning_effort": payload.pop("reasoning_effort"),
            **(kwargs if isinstance(kwargs, Mapping) else {}),
        }
    if expect.thinks and payload.get("reasoning_format") == "none":
        # The server then starts the reply text with a think opener the prompt ended with (DeepSeek-R1,
        # and MiniMax-M2 or Cohere2 even with thinking off), so the text says itself where it is; under
        # a constraint that opener is all the think block there is.
        expect = replace(expect, starts_in_reasoning=False, opener_echoed=constrained)
    return payload, expect
