"""The chat conversation with a server: the request flow (with the opt-in repair retry) and the stream
translation, both sans-IO. `provider.py` runs them with a driver."""

from __future__ import annotations

from typing import Any

from litellm.types.llms.openai import (
    ChatCompletionToolCallChunk,
    ChatCompletionToolCallFunctionChunk,
    ChatCompletionUsageBlock,
)
from litellm.types.utils import GenericStreamingChunk, Usage

from . import errors
from .protocol import JSON, Endpoint, Flow, HttpCall
from .streaming import StreamAssembler, argument_fragments
from .transformation import ChatRequest, choice_text, choices_of, merged_retry, repair_request, usage_from


def chat_call(request: ChatRequest) -> HttpCall:
    return HttpCall("POST", Endpoint.CHAT, request.payload)


def chat_flow(request: ChatRequest, *, repair: bool) -> Flow[JSON]:
    """One chat request; with `repair`, a reply holding broken call JSON is asked for once more."""
    data = yield chat_call(request)
    retry = repair_request(request, data) if repair else None
    if retry is not None:
        data = merged_retry(retry, data, (yield chat_call(retry)))
    return data


class StreamTranslator:
    """Server SSE events -> LiteLLM GenericStreamingChunks: content as it is safe, then the tool calls
    (one per chunk, arguments in fragments), then a final chunk with finish_reason and the server's usage.

    GenericStreamingChunk is the shape LiteLLM's stream wrapper fully supports for custom handlers
    (usage, including cached tokens, survives into the assembled response)."""

    def __init__(self, request: ChatRequest | None, url: str, model: str) -> None:
        # No ChatRequest: a text completion (/v1/completions), whose events carry `choices[0].text`.
        self._text_events = request is None
        self._assembler = StreamAssembler(
            request.tool_names if request else frozenset(), parse_tools=bool(request and request.parses_tools)
        )
        self._url = url
        self._model = model
        self._id = ""
        self._server_reason: str | None = None
        self._usage: Usage | None = None

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

    def on_event(self, event: JSON) -> list[GenericStreamingChunk]:
        if isinstance(event.get("id"), str):
            self._id = event["id"]
        usage = usage_from(event)
        if usage is not None:
            self._usage = usage
        if not event.get("choices"):  # the usage-only last event, or keep-alive noise
            return []
        choice = choices_of(event, self._model)[0]
        if choice.get("finish_reason"):
            self._server_reason = str(choice["finish_reason"])
        if self._text_events:
            text = choice.get("text") if isinstance(choice.get("text"), str) else ""
        else:
            text = self._assembler.feed(choice_text(choice, "delta", self._model))
        return [self._chunk(text)] if text else []

    @property
    def settled(self) -> bool:
        """The server said the reply is complete and gave its usage: nothing more is needed, so a server
        that holds the connection open after that cannot turn a complete reply into a timeout."""
        return self._server_reason is not None and self._usage is not None

    def on_end(self) -> list[GenericStreamingChunk]:
        if self._server_reason is None:
            # The server never said the reply was complete (killed, restarted): never pass it off as done.
            raise errors.stream_broken(self._url, self._model, "no finish_reason before the stream closed")
        end = self._assembler.finish(self._server_reason, id_seed=self._id)
        chunks: list[GenericStreamingChunk] = []
        if end.content:
            chunks.append(self._chunk(end.content))
        for index, call in enumerate(end.tool_calls):
            for number, piece in enumerate(argument_fragments(call.arguments)):
                first = number == 0
                tool_use = ChatCompletionToolCallChunk(
                    id=call.id if first else None,
                    type="function",
                    function=ChatCompletionToolCallFunctionChunk(
                        name=call.name if first else None, arguments=piece
                    ),
                    index=index,
                )
                chunks.append(self._chunk(tool_use=tool_use))
        usage: Any = self._usage.model_dump(exclude_none=True) if self._usage is not None else None
        chunks.append(self._chunk(finish_reason=end.finish_reason, usage=usage))
        return chunks
