"""The LiteLLM custom handler: pre-call (settings, template strategy, request), the HTTP call, post-call
(response or stream assembly). The transforms themselves live in transformation/streaming/parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import httpx
import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.llms.openai import (
    ChatCompletionToolCallChunk,
    ChatCompletionToolCallFunctionChunk,
    ChatCompletionUsageBlock,
)
from litellm.types.utils import GenericStreamingChunk, ModelResponse, Usage

from . import errors, probe
from .client import JSON, ServerClient
from .roles import to_text_turns
from .settings import LlamafileSettings, split_call_options
from .streaming import StreamAssembler, argument_fragments
from .transformation import (
    ChatRequest,
    build_chat_request,
    build_model_response,
    merged_retry,
    repair_request,
    usage_from,
)

CHAT_PATH = "/v1/chat/completions"


def _timeout_seconds(timeout: float | httpx.Timeout | None) -> float | None:
    if isinstance(timeout, httpx.Timeout):
        return timeout.read or timeout.connect
    return float(timeout) if timeout else None


def settings_for_call(
    api_base: str | None,
    api_key: str | None,
    timeout: float | httpx.Timeout | None,
    options: Mapping[str, Any],
) -> LlamafileSettings:
    try:
        return LlamafileSettings.resolve(
            api_base=api_base, api_key=api_key, timeout=_timeout_seconds(timeout), options=options
        )
    except ValueError as error:  # pydantic.ValidationError is a ValueError
        raise errors.invalid_request(f"invalid llamafile settings: {error}") from None


_priced: set[str] = set()


def register_zero_cost(model: str) -> None:
    """A local model costs nothing; saying so in LiteLLM's cost map spares every call a failing cost
    lookup (about a quarter of LiteLLM's per-call CPU, measured in bench/profile_adapter.py)."""
    if model in _priced:
        return
    _priced.add(model)
    litellm.register_model(
        {
            f"llamafile/{model}": {
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
                "cache_read_input_token_cost": 0.0,
                "cache_creation_input_token_cost": 0.0,
                "litellm_provider": "llamafile",
                "mode": "chat",
                "supports_function_calling": True,
                "supports_tool_choice": True,
                "supports_response_schema": True,
            }
        }
    )


class StreamTranslator:
    """Server SSE events -> LiteLLM GenericStreamingChunks: content as it is safe, then the tool calls
    (one per chunk, arguments in fragments), then a final chunk with finish_reason and the server's usage.

    GenericStreamingChunk is the shape LiteLLM's stream wrapper fully supports for custom handlers
    (usage, including cached tokens, survives into the assembled response)."""

    def __init__(self, request: ChatRequest) -> None:
        self._assembler = StreamAssembler(request.tool_names, parse_tools=request.parses_tools)
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
        choices = event.get("choices") or []
        if not choices or not isinstance(choices[0], Mapping):
            return []
        choice = choices[0]
        if choice.get("finish_reason"):
            self._server_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        text = self._assembler.feed(delta.get("content") or "")
        return [self._chunk(text)] if text else []

    def on_end(self, url: str, model: str) -> list[GenericStreamingChunk]:
        if self._server_reason is None:
            # The server never said the reply was complete (killed, restarted): never pass it off as done.
            raise errors.stream_broken(url, model, "no finish_reason before the stream closed")
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
        usage = self._usage.model_dump(exclude_none=True) if self._usage is not None else None
        chunks.append(self._chunk(finish_reason=end.finish_reason, usage=usage))  # type: ignore[arg-type]
        return chunks


class LlamafileProvider(CustomLLM):
    """Registered for the `llamafile/` prefix by `litellm_llamafile.register()`."""

    # Every call that reached this handler, for tests and debugging ("did the adapter run?").
    calls_handled = 0

    # -- pre-call ---------------------------------------------------------------------------------

    def _prepare(
        self,
        model: str,
        messages: list[Any],
        api_base: str | None,
        api_key: str | None,
        optional_params: Mapping[str, Any],
        timeout: float | httpx.Timeout | None,
    ) -> tuple[LlamafileSettings, ServerClient, Mapping[str, Any]]:
        LlamafileProvider.calls_handled += 1
        to_text_turns(messages)  # bad input fails here, before any request reaches the server
        register_zero_cost(model)
        options, params = split_call_options(optional_params)
        settings = settings_for_call(api_base, api_key, timeout, options)
        return settings, ServerClient(settings, model), params

    @staticmethod
    def _request(
        settings: LlamafileSettings,
        info: probe.ServerInfo,
        server: ServerClient,
        messages: list[Any],
        params: Mapping[str, Any],
        logging_obj: Any,
        *,
        stream: bool,
    ) -> ChatRequest:
        request = build_chat_request(
            server.model,
            messages,
            params,
            probe.chosen_template(settings, info),
            stream=stream,
            constraint=info.constraint,
            constrain_auto=settings.constrain_auto,
            slots=info.total_slots if settings.slot_affinity else None,
        )
        pre_call: Callable[..., Any] | None = getattr(logging_obj, "pre_call", None)
        if pre_call is not None:  # the key is never handed to LiteLLM's logger
            pre_call(
                input=messages,
                api_key="",
                additional_args={"complete_input_dict": request.payload, "api_base": server.url(CHAT_PATH)},
            )
        return request

    # -- LiteLLM entry points: LiteLLM calls them with keyword arguments; the ones not needed here
    # (custom_prompt_dict, print_verbose, encoding, litellm_params, headers, client, ...) land in `_`.

    def completion(  # type: ignore[override]
        self,
        *,
        model: str,
        messages: list[Any],
        api_base: str | None,
        api_key: str | None,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        logging_obj: Any = None,
        timeout: float | httpx.Timeout | None = None,
        **_: Any,
    ) -> ModelResponse:
        settings, server, params = self._prepare(model, messages, api_base, api_key, optional_params, timeout)
        info = probe.server_info(server)
        request = self._request(settings, info, server, messages, params, logging_obj, stream=False)
        data = server.request_json("POST", CHAT_PATH, request.payload)
        retry = repair_request(request, data) if settings.repair_retry else None
        if retry is not None:
            data = merged_retry(retry, data, server.request_json("POST", CHAT_PATH, retry.payload))
        return build_model_response(data, request, model_response, model)

    async def acompletion(  # type: ignore[override]
        self,
        *,
        model: str,
        messages: list[Any],
        api_base: str | None,
        api_key: str | None,
        model_response: ModelResponse,
        optional_params: dict[str, Any],
        logging_obj: Any = None,
        timeout: float | httpx.Timeout | None = None,
        **_: Any,
    ) -> ModelResponse:
        settings, server, params = self._prepare(model, messages, api_base, api_key, optional_params, timeout)
        info = await probe.aserver_info(server)
        request = self._request(settings, info, server, messages, params, logging_obj, stream=False)
        data = await server.arequest_json("POST", CHAT_PATH, request.payload)
        retry = repair_request(request, data) if settings.repair_retry else None
        if retry is not None:
            data = merged_retry(retry, data, await server.arequest_json("POST", CHAT_PATH, retry.payload))
        return build_model_response(data, request, model_response, model)

    def streaming(  # type: ignore[override]
        self,
        *,
        model: str,
        messages: list[Any],
        api_base: str | None,
        api_key: str | None,
        optional_params: dict[str, Any],
        logging_obj: Any = None,
        timeout: float | httpx.Timeout | None = None,
        **_: Any,
    ) -> Iterator[GenericStreamingChunk]:
        settings, server, params = self._prepare(model, messages, api_base, api_key, optional_params, timeout)
        info = probe.server_info(server)
        request = self._request(settings, info, server, messages, params, logging_obj, stream=True)
        return self._stream(server, request)

    @staticmethod
    def _stream(server: ServerClient, request: ChatRequest) -> Iterator[GenericStreamingChunk]:
        translator = StreamTranslator(request)
        with server.stream_events(CHAT_PATH, request.payload) as events:
            for event in events:
                yield from translator.on_event(event)
        yield from translator.on_end(server.url(CHAT_PATH), server.model)

    async def astreaming(  # type: ignore[override]
        self,
        *,
        model: str,
        messages: list[Any],
        api_base: str | None,
        api_key: str | None,
        optional_params: dict[str, Any],
        logging_obj: Any = None,
        timeout: float | httpx.Timeout | None = None,
        **_: Any,
    ) -> AsyncIterator[GenericStreamingChunk]:
        settings, server, params = self._prepare(model, messages, api_base, api_key, optional_params, timeout)
        info = await probe.aserver_info(server)
        request = self._request(settings, info, server, messages, params, logging_obj, stream=True)
        translator = StreamTranslator(request)
        async with server.astream_events(CHAT_PATH, request.payload) as events:
            async for event in events:
                for chunk in translator.on_event(event):
                    yield chunk
        for chunk in translator.on_end(server.url(CHAT_PATH), server.model):
            yield chunk
