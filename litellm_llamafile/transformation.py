"""Pure request/response transforms for POST /v1/chat/completions (the LiteLLM provider-module shape).

`build_chat_request` turns LiteLLM's call (messages + optional params) into the server's JSON body;
`build_model_response` turns the server's JSON answer into a LiteLLM ModelResponse. No I/O here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar, cast

from litellm.exceptions import APIError
from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Choices,
    Function,
    Message,
    ModelResponse,
    Usage,
)

from .errors import PROVIDER, invalid_request
from .families import NO_EXPECTATION, ReplyExpectation
from .grammar import (
    call_or_answer_grammar,
    grammar_for_schema,
    json_thought_then_call_grammar,
    prose_or_call_grammar,
    thought_then_call_grammar,
)
from .lru import LRU
from .offered import Offered
from .parsing import ParsedReply, broken_call_reason, parse_tool_calls, split_reasoning, tool_names
from .roles import (
    RoleStrategy,
    WireMessage,
    has_images,
    reshape_messages,
    reshape_turns,
    strategy_for,
    text_of,
    to_text_turns,
)
from .schemas import SchemaError, answer_schema, checked
from .settings import DEFAULT_LIMITS, SchemaLimits, TemplateName
from .streaming import final_finish_reason
from .tools import (
    ToolChoice,
    answer_constraint,
    call_or_answer_schema,
    call_schema,
    normalize_tool_choice,
    thought_constraint,
    tool_instructions,
    tool_name,
    worst_case_chars,
)

ConstraintField = Literal["json_schema", "grammar"]
T = TypeVar("T")

# Parameters the adapter consumes itself; everything else is forwarded to the server as is
# (llama.cpp accepts OpenAI's sampling fields plus its own: top_k, min_p, grammar, json_schema, ...).
_CONSUMED = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "stream", "stream_options"}
)


_CALLER_CONSTRAINTS = ("grammar", "json_schema", "response_format")
THOUGHT_CHARS = 400  # the longest thought `llamafile_constrain_auto="thought"` allows before the call


def _thought_then_call(
    tools: Sequence[Mapping[str, Any]],
    choice: ToolChoice,
    *,
    parallel: bool,
    budget: int | None,
    thought_schema: Mapping[str, Any] | None,
    limits: SchemaLimits,
) -> str:
    """The thought mode's grammar: a prose thought (or JSON valid for `thought_schema`), then the call(s)
    `choice` allows. The thought takes at most half of max_tokens, the call the rest, so both end."""
    if thought_schema is None:
        room = None if budget is None else max(budget - THOUGHT_CHARS, 1)
        call = call_schema(tools, choice, parallel=parallel, budget=room, limits=limits)
        return thought_then_call_grammar(call, max_thought_chars=THOUGHT_CHARS)
    thought = thought_constraint(thought_schema, None if budget is None else max(budget // 2, 1), limits)
    room = None if budget is None else max(budget - worst_case_chars(thought) - 1, 1)
    call = call_schema(tools, choice, parallel=parallel, budget=room, limits=limits)
    return json_thought_then_call_grammar(thought, call)


def _answer_schema(payload: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema of a caller's response_format (json_schema or json_object), if any."""
    fmt = payload.get("response_format")
    return answer_schema(fmt) if isinstance(fmt, Mapping) else None


@dataclass(frozen=True, slots=True)
class Conversation:
    """The caller's messages as plain-text turns, converted (and so validated) once per call."""

    turns: list[WireMessage]
    messages: Sequence[object] = ()

    @classmethod
    def of(cls, messages: Sequence[object] | Conversation) -> Conversation:
        if isinstance(messages, Conversation):
            return messages
        return cls(to_text_turns(messages), messages)

    def reshaped(self, template: TemplateName | RoleStrategy, preamble: str | None) -> list[WireMessage]:
        """The turns for `template`'s role strategy, tool instructions in the leading system text."""
        strategy = strategy_for(template)
        if strategy.tool_role or strategy.tool_calls:  # native tool turns are made from the messages
            return reshape_messages(self.messages, strategy, system_preamble=preamble)
        return reshape_turns(self.turns, strategy, system_preamble=preamble)


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

    @property
    def text_route(self) -> bool:
        """Sent as a rendered prompt to /v1/completions rather than as messages to the chat endpoint."""
        return self.past_reader or bool(self.template_tools)

    @property
    def parses_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice.mode != "none"

    @property
    def tool_names(self) -> frozenset[str]:
        return tool_names(self.tools) if self.parses_tools else frozenset()

    @property
    def offered(self) -> Offered:
        """The offered tools with their parameter types, as the reply parser reads them."""
        return Offered.of(self.tools) if self.parses_tools else Offered()


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


@_schemas_refused_as_bad_requests
def build_chat_request(
    model: str,
    messages: Sequence[object] | Conversation,
    params: Mapping[str, Any],
    template: TemplateName | RoleStrategy,
    *,
    stream: bool = False,
    constraint: ConstraintField = "json_schema",
    constrain_auto: bool | str = False,
    thought_schema: Mapping[str, Any] | None = None,
    slots: int | None = None,
    expect: ReplyExpectation = NO_EXPECTATION,
    native_tools: bool = False,
    past_reader: bool = False,
    limits: SchemaLimits = DEFAULT_LIMITS,
    compiled: CompiledTools | None = None,
) -> ChatRequest:
    """LiteLLM call -> server request. `template` must be resolved (not AUTO).

    `constraint` is the field the server honours for constrained sampling: `json_schema` (sent as
    OpenAI's response_format, which llama-server and llamafiler accept) or `grammar` (GBNF, classic
    llamafile). `constrain_auto` also constrains tool_choice="auto" to prose-or-a-valid-call (GBNF).
    The thought mode (`constrain_auto="thought"`, or a `thought_schema`) puts a thought before every
    call, auto or forced: prose, or JSON valid for `thought_schema` (GBNF on every server).
    `native_tools`: the chat template renders the offered tools (its own format) instead of the
    adapter's instructions (see ChatRequest.template_tools). `past_reader`: send it past the server's
    reply reader (ChatRequest.past_reader). Neither applies to a request with images.
    A schema the constraint or the tool instructions cannot use, or one past `limits`, is the caller's
    BadRequestError, raised before anything is sent.
    """
    compiled = compiled or CompiledTools(size=4)
    tools, raw_choice = _tools_from(params, limits)
    try:
        choice = normalize_tool_choice(raw_choice, tools)
    except ValueError as error:
        raise invalid_request(str(error), model) from None
    offered = tools if choice.mode != "none" else []
    conversation = Conversation.of(messages)
    # Both take the text route, and a rendered prompt holds no image data: a request with images keeps
    # the chat endpoint and the generic instructions.
    text_ok = not has_images(conversation.turns)
    native = native_tools and bool(offered) and text_ok
    instructions = (
        compiled.get("instructions", (offered, limits), lambda: tool_instructions(offered, limits))
        if offered and not native
        else None
    )
    wire = conversation.reshaped(template, instructions)

    payload: dict[str, Any] = {k: v for k, v in params.items() if k not in _CONSUMED and v is not None}
    if "max_completion_tokens" in payload:
        payload.setdefault("max_tokens", payload.pop("max_completion_tokens"))
    payload["model"] = model
    payload["messages"] = wire
    payload = _with_constraint(
        payload,
        offered,
        choice,
        constraint=constraint,
        constrain_auto=constrain_auto,
        thought_schema=thought_schema,
        parallel=params.get("parallel_tool_calls") is True,
        limits=limits,
        compiled=compiled,
    )
    if expect.thinks:
        # The adapter reads every reply itself: llama-server's own reader for a thinking template's
        # format answers HTTP 500 to a reply not in that shape (muse-glimmer, Solar Open, Kimi K3).
        payload.setdefault("reasoning_format", "none")
    constrained = any(k in payload for k in _CALLER_CONSTRAINTS)
    if expect.thinks and (tools or constrained):
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
    if slots and "id_slot" not in payload:
        payload["id_slot"] = affinity_slot(conversation, slots)
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return ChatRequest(
        payload=payload,
        messages=wire,
        tools=tuple(offered),
        tool_choice=choice,
        expect=expect,
        template_tools=tuple(offered) if native else (),
        past_reader=past_reader and text_ok,
    )


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


def _with_constraint(
    payload: dict[str, Any],
    offered: Sequence[Mapping[str, Any]],
    choice: ToolChoice,
    *,
    constraint: ConstraintField,
    constrain_auto: bool | str,
    thought_schema: Mapping[str, Any] | None,
    parallel: bool,
    limits: SchemaLimits,
    compiled: CompiledTools,
) -> dict[str, Any]:
    """The payload with the sampling constraint the tool choice needs (see `_constraint_fields`), which
    replaces a caller's own constraint."""
    budget = payload.get("max_tokens") if isinstance(payload.get("max_tokens"), int) else None
    answer = _answer_schema(payload)
    caller_constrained = any(k in payload for k in _CALLER_CONSTRAINTS)
    inputs = (offered, choice, constraint, constrain_auto, thought_schema, parallel, limits, budget, answer)
    added = compiled.get(
        "constraint",
        (*inputs, caller_constrained),
        lambda: _constraint_fields(*inputs, caller_constrained=caller_constrained),
    )
    if not added:
        return payload
    return {**{k: v for k, v in payload.items() if k not in _CALLER_CONSTRAINTS}, **added}


def _constraint_fields(
    offered: Sequence[Mapping[str, Any]],
    choice: ToolChoice,
    constraint: ConstraintField,
    constrain_auto: bool | str,
    thought_schema: Mapping[str, Any] | None,
    parallel: bool,
    limits: SchemaLimits,
    budget: int | None,
    answer_format: Mapping[str, Any] | None,
    *,
    caller_constrained: bool,
) -> dict[str, Any]:
    """The constraint fields the tool choice needs: a forced call (with or without a thought before it),
    auto with the caller's response_format (call or answer), or constrained auto; none otherwise.
    Raises SchemaError when the constraint would pass `limits.constraint_bytes`."""
    thought_mode = constrain_auto == "thought" or thought_schema is not None

    def calls() -> dict[str, Any]:
        return call_schema(offered, choice, parallel=parallel, budget=budget, limits=limits)

    def thought_then_call() -> str:
        return _thought_then_call(
            offered, choice, parallel=parallel, budget=budget, thought_schema=thought_schema, limits=limits
        )

    added: dict[str, Any] = {}
    if choice.forces_call and thought_mode:
        # No JSON schema spells text before a call: a grammar, which every server takes.
        added["grammar"] = thought_then_call()
    elif choice.forces_call:
        # Constrained sampling makes a forced call always valid; it overrides a caller's own constraint.
        added = _schema_field(calls(), "tool_call", constraint)
    elif choice.mode == "auto" and answer_format is not None:
        # OpenAI's semantics: the model may call a tool or give the structured answer, so the caller's
        # response_format becomes one alternative of the constraint instead of the whole of it.
        answer = answer_constraint(answer_format, budget, limits)
        if constraint == "grammar":
            added["grammar"] = call_or_answer_grammar(calls(), answer)
        else:
            added = _schema_field(call_or_answer_schema(calls(), answer), "call_or_answer", "json_schema")
    elif (constrain_auto or thought_mode) and choice.mode == "auto" and not caller_constrained:
        # a thought, then exactly one call (AutoGPT-style agents); or prose or a call
        added["grammar"] = thought_then_call() if thought_mode else prose_or_call_grammar(calls())
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


def no_thinking(kwargs: object) -> dict[str, Any]:
    """`chat_template_kwargs` for a constrained reply on a thinking template: thinking off (llama-server
    then closes a think block the template opens, and a Qwen3-style template renders an empty one), so
    the grammar or schema applies to the reply itself, not to a think block the server would file as
    reasoning_content. The caller's own kwargs, an explicit `enable_thinking` included, win."""
    return {"enable_thinking": False, **(kwargs if isinstance(kwargs, Mapping) else {})}


def conversation_key(messages: Sequence[object] | Conversation) -> int:
    """A 64-bit key for a conversation: its first system text and first user text, as given. An agent
    only appends turns, so these never change, whereas the reshaped turns do (Mistral merges a new user
    message into the previous one). One key for a slot inside a server and a replica among servers."""
    turns = Conversation.of(messages).turns
    first_system = next((text_of(t["content"]) for t in turns if t["role"] == "system"), "")
    first_user = next((text_of(t["content"]) for t in turns if t["role"] == "user"), "")
    opening = json.dumps([first_system, first_user]).encode()
    return int.from_bytes(hashlib.blake2b(opening, digest_size=8).digest(), "big")


def affinity_slot(messages: Sequence[object] | Conversation, total_slots: int) -> int:
    """A stable slot for a conversation, so each agent's requests land where its prompt prefix is cached."""
    return conversation_key(messages) % total_slots


REPAIR_PROMPT = "Your tool call could not be used: {reason}. Answer again with only the corrected JSON call."


def _shape_error(data: object, why: str, model: str = "") -> APIError:
    return APIError(
        status_code=200,
        message=f"server answer {why}: {json.dumps(data, default=str)[:300]!r}",
        model=model,
        llm_provider=PROVIDER,
    )


def choices_of(data: Mapping[str, Any], model: str = "") -> list[Mapping[str, Any]]:
    """The answer's choices, each a mapping; a typed error (quoting the answer) for any other shape."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, Mapping) for c in choices):
        raise _shape_error(data, "has no list of choices", model)
    return choices


def choice_text(
    choice: Mapping[str, Any], part: str = "message", model: str = "", field: str = "content"
) -> str:
    """`choice[part][field]` as text ("" when absent); a typed error for a message or content of the
    wrong type, never a crash."""
    message = choice.get(part)
    if message is None:
        return ""
    if not isinstance(message, Mapping):
        raise _shape_error(choice, f"has a {part} that is not an object", model)
    content = message.get(field)
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _shape_error(choice, f"has {part}.{field} that is not text", model)
    return content


def _first_reply(data: Mapping[str, Any]) -> tuple[str, str | None]:
    choice = choices_of(data)[0]
    return choice_text(choice), choice.get("finish_reason")


def repair_request(request: ChatRequest, data: Mapping[str, Any]) -> ChatRequest | None:
    """The one repair retry (opt-in): when tools were offered and the reply tried a call but its JSON
    could not be used, show the model its reply and the parse error and ask again. None otherwise."""
    text, reason = _first_reply(data)
    if not request.parses_tools or reason == "length" or request.messages[-1]["role"] != "user":
        return None
    why = broken_call_reason(text, request.tools)
    if why is None:
        return None
    messages: list[WireMessage] = [
        *request.messages,
        {"role": "assistant", "content": text},
        {"role": "user", "content": REPAIR_PROMPT.format(reason=why)},
    ]
    return replace(request, payload={**request.payload, "messages": messages}, messages=messages)


def merged_retry(request: ChatRequest, first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """The retry's answer when it holds a usable call, else the first answer (nothing is lost); usage
    counts both requests."""
    text, reason = _first_reply(second)
    repaired = reason != "length" and parse_tool_calls(text, request.tool_names).tool_calls
    chosen = dict(second if repaired else first)
    usages = [u for u in (first.get("usage"), second.get("usage")) if isinstance(u, Mapping)]
    if len(usages) == 2:
        chosen["usage"] = {
            key: int(usages[0].get(key) or 0) + int(usages[1].get(key) or 0)
            for key in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
    return chosen


def usage_from(data: Mapping[str, Any]) -> Usage | None:
    """OpenAI usage from a server answer, with cached prompt tokens (llama.cpp reports them as
    usage.prompt_tokens_details.cached_tokens, or only as timings.cache_n on older builds)."""
    usage = data.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, Mapping):
        raise _shape_error(data, "has a usage that is not an object")
    try:
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        total = int(usage.get("total_tokens") or prompt + completion)
        details = usage.get("prompt_tokens_details")
        cached: int | None = None
        if isinstance(details, Mapping) and details.get("cached_tokens") is not None:
            cached = int(details["cached_tokens"])
        else:
            timings = data.get("timings")
            if isinstance(timings, Mapping) and timings.get("cache_n") is not None:
                cached = int(timings["cache_n"])
    except (TypeError, ValueError):
        raise _shape_error(data, "has token counts that are not numbers") from None
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        prompt_tokens_details={"cached_tokens": cached} if cached is not None else None,
    )


def to_litellm_tool_calls(reply: ParsedReply) -> list[ChatCompletionMessageToolCall] | None:
    if not reply.tool_calls:
        return None
    return [
        ChatCompletionMessageToolCall(
            id=c.id, type="function", function=Function(name=c.name, arguments=c.arguments)
        )
        for c in reply.tool_calls
    ]


def parse_reply(text: str, request: ChatRequest, *, id_seed: str, server_reason: str | None) -> ParsedReply:
    """The reply text split into reasoning, content and calls (calls only when tools were offered)."""
    expect = request.expect
    if not request.parses_tools:
        return split_reasoning(
            text, starts_in_reasoning=expect.starts_in_reasoning, opener_echoed=expect.opener_echoed
        )
    return parse_tool_calls(
        text,
        request.offered,
        id_seed=id_seed,
        truncated=server_reason == "length",
        starts_in_reasoning=expect.starts_in_reasoning,
        reply_prefix=expect.reply_prefix,
        opener_echoed=expect.opener_echoed,
        forced=request.tool_choice.forces_call,
    )


def build_model_response(
    data: Mapping[str, Any], request: ChatRequest, model_response: ModelResponse, model: str
) -> ModelResponse:
    """Server JSON answer -> the LiteLLM ModelResponse (filled in place, as custom handlers do)."""
    choices = choices_of(data, model)
    response_id = str(data.get("id") or f"chatcmpl-{time.time_ns()}")
    new_choices = []
    for index, choice in enumerate(choices):
        text = choice_text(choice, model=model)
        server_reasoning = choice_text(choice, model=model, field="reasoning_content")
        server_reason = choice.get("finish_reason")
        seed = response_id if index == 0 else f"{response_id}/{index}"
        reply = parse_reply(text, request, id_seed=seed, server_reason=server_reason)
        reason = (
            final_finish_reason(server_reason, bool(reply.tool_calls))
            if request.parses_tools
            else (server_reason or "stop")
        )
        content = reply.content if request.parses_tools else (reply.content or "")
        message = Message(
            role="assistant",
            content=content,
            tool_calls=to_litellm_tool_calls(reply),
            reasoning_content=server_reasoning or reply.reasoning or None,  # the server's own split wins
        )
        new_choices.append(
            Choices(
                index=index,
                finish_reason=reason,
                message=message,
                logprobs=choice.get("logprobs"),  # token logprobs of the whole reply, call text included
            )
        )
    model_response.choices = new_choices
    model_response.id = response_id
    model_response.created = int(data.get("created") or time.time())
    model_response.model = model
    usage = usage_from(data)
    if usage is not None:
        model_response.usage = usage  # type: ignore[attr-defined]
    if isinstance(data.get("timings"), Mapping):  # llama.cpp's prefill/decode timings, for benchmarks
        model_response._hidden_params["llamafile_timings"] = dict(data["timings"])
    return model_response


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
    schema = _answer_schema(payload)
    if schema is not None and "grammar" not in body:
        body["json_schema"] = schema
    body["prompt"] = prompt
    return body


def chat_answer_from_text(data: Mapping[str, Any]) -> dict[str, Any]:
    """A /v1/completions answer in the shape of a chat answer (the adapter parses both alike)."""
    choice = choices_of(data)[0]
    text = choice.get("text")
    answer = {k: data[k] for k in ("id", "created", "model", "usage", "timings") if k in data}
    message = {"role": "assistant", "content": text if isinstance(text, str) else ""}
    answer["object"] = "chat.completion"
    answer["choices"] = [{"index": 0, "message": message, "finish_reason": choice.get("finish_reason")}]
    if choice.get("logprobs") is not None:
        answer["choices"][0]["logprobs"] = choice["logprobs"]
    return answer
