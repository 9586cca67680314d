"""The chat conversation with a server: the request flow (the reply read again as a stream when the
context ran out, sent again past a reply reader that refused, the opt-in repair retry) and the stream
translation, both sans-IO. `integration/provider.py` runs them with a driver."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from litellm.types.llms.openai import (
    ChatCompletionToolCallChunk,
    ChatCompletionToolCallFunctionChunk,
    ChatCompletionUsageBlock,
)
from litellm.types.utils import Delta, GenericStreamingChunk, ModelResponseStream, StreamingChoices, Usage

from ..core import errors
from ..prompt.call_checks import as_text, call_problem, invalid_calls
from ..prompt.roles import WireMessage
from ..reply.parsing import ParsedReply, broken_call_reason, parse_tool_calls
from ..reply.reply_parts import CallDelta
from ..reply.streaming import StreamAssembler, StreamEnd
from ..wire.protocol import JSON, Endpoint, Flow, HttpCall
from .chat_answer import chat_answer_from_text, choice_text, choices_of, first_reply, usage_from
from .request import ChatRequest, template_body, text_route_body


def chat_call(request: ChatRequest) -> HttpCall:
    return HttpCall("POST", Endpoint.CHAT, request.payload)


def stream_call_flow(request: ChatRequest) -> Flow[HttpCall]:
    """The streamed request: a chat one, or for tools the template renders itself, the prompt rendered
    first and then streamed from /v1/completions (StreamTranslator reads its text events)."""
    if not request.text_route:
        return chat_call(request)
    prompt = yield from _rendered_prompt(request)
    return HttpCall("POST", Endpoint.COMPLETIONS, text_route_body(request.payload, prompt))


def chat_flow(
    request: ChatRequest, *, repair: bool, on_refused: Callable[[], None] = lambda: None
) -> Flow[JSON]:
    """One chat request; with `repair`, a reply holding broken call JSON is asked for once more.
    `on_refused` hears that the server's own reply reader refused a reply (the server remembers it)."""
    data = yield from _reply(request, on_refused)
    retry = repair_request(request, data) if repair else None
    if retry is not None:
        data = merged_retry(retry, data, (yield from _reply(retry, on_refused)))
    return data


REPAIR_PROMPT = "Your tool call could not be used: {reason}. Answer again with only the corrected JSON call."


def repair_request(request: ChatRequest, data: Mapping[str, Any]) -> ChatRequest | None:
    """The one repair retry (opt-in): when tools were offered and the reply tried a call but its JSON
    could not be used, show the model its reply and the parse error and ask again. None otherwise."""
    text, reason = first_reply(data)
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
    text, reason = first_reply(second)
    repaired = reason != "length" and parse_tool_calls(text, request.offered).tool_calls
    chosen = dict(second if repaired else first)
    usages = [u for u in (first.get("usage"), second.get("usage")) if isinstance(u, Mapping)]
    if len(usages) == 2:
        chosen["usage"] = {
            key: int(usages[0].get(key) or 0) + int(usages[1].get(key) or 0)
            for key in ("prompt_tokens", "completion_tokens", "total_tokens")
        }
    return chosen


def _reply(request: ChatRequest, on_refused: Callable[[], None]) -> Flow[JSON]:
    """The server's answer. When a reply runs out of the server's context, llama-server's non-streamed
    answer is an error and the text is lost; the same request is then read as a stream, which keeps
    what was written up to the cut (OpenAI's finish_reason "length")."""
    if request.text_route:
        return (yield from _reply_without_reader(request))
    try:
        return (yield chat_call(request))
    except errors.ReplyOutOfContext:
        pass
    except errors.ReplyFormatRefused:
        on_refused()
        return (yield from _reply_without_reader(request))
    body = {**request.payload, "stream": True, "stream_options": {"include_usage": True}}
    streamed = yield HttpCall("POST", Endpoint.CHAT, body, stream=True)
    return assemble_events(streamed.get("events") or [], cut_off=bool(streamed.get("cut_off")))


def _reply_without_reader(request: ChatRequest) -> Flow[JSON]:
    """The same request past llama-server's reply reader: the prompt its template renders for these
    messages, sent to /v1/completions (which reads nothing), answered in the chat shape. The prompt is
    the chat one token for token, so the prompt cache and the counts hold."""
    prompt = yield from _rendered_prompt(request)
    data = yield HttpCall("POST", Endpoint.COMPLETIONS, text_route_body(request.payload, prompt))
    return chat_answer_from_text(data)


def _rendered_prompt(request: ChatRequest) -> Flow[str]:
    rendered = yield HttpCall("POST", Endpoint.APPLY_TEMPLATE, template_body(request))
    prompt = rendered.get("prompt")
    if not isinstance(prompt, str):
        raise errors.BadAnswer("JSON with no prompt", rendered)
    return prompt


def assemble_events(events: list[JSON], *, cut_off: bool) -> JSON:
    """Chat-completion stream events -> the non-streamed answer they add up to."""
    text: list[str] = []
    reason: str | None = None
    answer: JSON = {"object": "chat.completion"}
    for event in events:
        for key in ("id", "created", "model", "usage", "timings"):
            if event.get(key) is not None:
                answer[key] = event[key]
        if event.get("choices"):
            choice = choices_of(event)[0]
            text.append(choice_text(choice, "delta"))
            reason = choice.get("finish_reason") or reason
    message = {"role": "assistant", "content": "".join(text)}
    answer["choices"] = [{"index": 0, "message": message, "finish_reason": "length" if cut_off else reason}]
    return answer


Chunk = GenericStreamingChunk | ModelResponseStream


class StreamTranslator:
    """Server SSE events -> LiteLLM GenericStreamingChunks: content as it is safe, tool calls as they are
    written (a call's first chunk has its id and name once it is certain, then its arguments in
    fragments), then a final chunk with finish_reason and the server's usage.

    GenericStreamingChunk is the shape LiteLLM's stream wrapper fully supports for custom handlers
    (usage, including cached tokens, survives into the assembled response).

    Token logprobs (`logprobs=True`) are the server's, for every token it generated, in OpenAI's shape
    (`choices[0].logprobs.content`): they ride on content chunks (ModelResponseStream, which has the
    field). Text the assembler holds back (a possible tool call) or turns into a call keeps its tokens'
    logprobs: they go out with the next content chunk, or with one chunk of their own before the calls,
    so the stream carries the same logprobs as the non-streamed reply (call text included)."""

    def __init__(self, request: ChatRequest | None, url: str, model: str) -> None:
        # No ChatRequest: a text completion (/v1/completions), whose events carry `choices[0].text`,
        # passed on as they are; a chat request whose template renders the tools streams from there too.
        self._raw_text = request is None
        self._text_events = request is None or request.text_route
        expect = request.expect if request else None
        self._tools = request.tools if request and request.parses_tools else ()
        self._assembler = StreamAssembler(
            request.offered if request else (),
            parse_tools=bool(request and request.parses_tools),
            forced=bool(request and request.tool_choice.forces_call),
            parse_reasoning=request is not None,
            starts_in_reasoning=bool(expect and expect.starts_in_reasoning),
            reply_prefix=expect.reply_prefix if expect else "",
            opener_echoed=bool(expect and expect.opener_echoed),
            accepts=self._accepts,
        )
        self._url = url
        self._model = model
        self._id = ""
        self._server_reason: str | None = None
        self._usage: Usage | None = None
        self._logprobs: list[Any] = []  # token logprobs not sent yet
        self.answered_as: object = None  # the `model` the server's events name (Server.saw_reply)

    def _accepts(self, name: str, arguments: str) -> bool:
        """A closed call may reach the client only if its tool's schema accepts it (call_checks)."""
        return call_problem(name, arguments, self._tools) is None

    @staticmethod
    def _chunk(
        text: str = "",
        tool_use: ChatCompletionToolCallChunk | None = None,
        finish_reason: str = "",
        usage: ChatCompletionUsageBlock | None = None,
    ) -> GenericStreamingChunk:
        return GenericStreamingChunk(
            text=text,
            tool_use=tool_use,
            is_finished=bool(finish_reason),
            finish_reason=finish_reason,
            usage=usage,
            index=0,
        )

    def _content(self, text: str) -> Chunk:
        """A content chunk, carrying the logprobs of the tokens read so far when there are any."""
        if not self._logprobs:
            return self._chunk(text)
        logprobs, self._logprobs = self._logprobs, []
        choice = StreamingChoices(index=0, delta=Delta(content=text), logprobs={"content": logprobs})
        return ModelResponseStream(id=self._id or None, choices=[choice])

    def _take_logprobs(self, choice: Mapping[str, Any]) -> None:
        logprobs = choice.get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
        if isinstance(content, list):
            self._logprobs.extend(content)

    @staticmethod
    def _reasoning(text: str) -> ModelResponseStream:
        # GenericStreamingChunk has no reasoning field; LiteLLM's stream wrapper passes a custom
        # provider's ModelResponseStream through as it is, so reasoning deltas travel as those.
        return ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta(reasoning_content=text))])

    def on_event(self, event: JSON) -> list[Chunk]:
        if isinstance(event.get("id"), str):
            self._id = event["id"]
        if self.answered_as is None:
            self.answered_as = event.get("model")
        usage = usage_from(event)
        if usage is not None:
            self._usage = usage
        if not event.get("choices"):  # the usage-only last event, or keep-alive noise
            return []
        choice = choices_of(event)[0]
        if choice.get("finish_reason"):
            self._server_reason = str(choice["finish_reason"])
        if self._text_events:
            delta = str(choice["text"]) if isinstance(choice.get("text"), str) else ""
            if self._raw_text:
                return [self._chunk(delta)] if delta else []
        else:
            delta = choice_text(choice, "delta")
        self._take_logprobs(choice)
        text = self._assembler.feed(delta)
        reasoning = choice_text(choice, "delta", "reasoning_content") + self._assembler.take_reasoning()
        chunks: list[Chunk] = [self._reasoning(reasoning)] if reasoning else []
        if text:
            chunks.append(self._content(text))
        return chunks + [self._call_chunk(d) for d in self._assembler.take_calls(self._id)]

    def _call_chunk(self, delta: CallDelta) -> GenericStreamingChunk:
        tool_use = ChatCompletionToolCallChunk(
            id=delta.id,
            type="function",
            function=ChatCompletionToolCallFunctionChunk(name=delta.name, arguments=delta.arguments),
            index=delta.index,
        )
        return self._chunk(tool_use=tool_use)

    def cut_off(self) -> None:
        """The reply ran out of the server's context mid-stream: it ends here, as a "length" reply."""
        self._server_reason = "length"

    @property
    def settled(self) -> bool:
        """The server said the reply is complete and gave its usage: nothing more is needed, so a server
        that holds the connection open after that cannot turn a complete reply into a timeout."""
        return self._server_reason is not None and self._usage is not None

    def on_end(self) -> list[Chunk]:
        if self._server_reason is None:
            # The server never said the reply was complete (killed, restarted): never pass it off as done.
            raise errors.stream_broken(self._url, self._model, "no finish_reason before the stream closed")
        streamed = bool(self._assembler.emitted)
        end = self._assembler.finish(self._server_reason, id_seed=self._id)
        end = checked_end(end, self._tools, follows_text=streamed)
        chunks: list[Chunk] = [self._reasoning(end.reasoning)] if end.reasoning else []
        if end.content or self._logprobs:
            chunks.append(self._content(end.content))
        chunks.extend(self._call_chunk(delta) for delta in end.call_deltas)
        usage: Any = self._usage.model_dump(exclude_none=True) if self._usage is not None else None
        chunks.append(self._chunk(finish_reason=end.finish_reason, usage=usage))
        return chunks


def checked_end(end: StreamEnd, tools: Sequence[Mapping[str, Any]], *, follows_text: bool) -> StreamEnd:
    """The end of a stream with every call its tool's schema rejects given back as text (call_checks)."""
    reply = ParsedReply(end.content or None, end.tool_calls)
    rejected = invalid_calls(reply, tools) if tools else {}
    if not rejected:
        return end
    kept = as_text(reply, rejected, follows_text=follows_text)
    reason = "length" if end.finish_reason == "length" else "tool_calls" if kept.tool_calls else "stop"
    return replace(end, content=kept.content or "", tool_calls=kept.tool_calls, finish_reason=reason)
