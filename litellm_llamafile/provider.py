"""The LiteLLM custom handler: pre-call (settings, the server, the request), the flows run by a driver,
post-call (response or stream assembly). The transforms live in transformation/chat/streaming/parsing, the
HTTP in transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import litellm
from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import EmbeddingResponse, GenericStreamingChunk, ModelResponse

from . import errors
from .chat import StreamTranslator, chat_call, chat_flow
from .embeddings import build_embedding_response, embedding_flow, embedding_inputs
from .probe import ServerInfo, chosen_template
from .protocol import Endpoint, Flow, HttpCall, single
from .servers import Server, server_for
from .settings import LlamafileSettings, call_settings, split_call_options
from .text_completion import build_text_response, is_text_completion, text_completion_call
from .tokens import count_flow
from .transformation import ChatRequest, Conversation, build_chat_request, build_model_response


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
    return call_settings(
        api_base=api_base, api_key=api_key, timeout=_timeout_seconds(timeout), options=options
    )


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


@dataclass(frozen=True, slots=True)
class _Call:
    """One LiteLLM call, resolved: its settings, its server, the request parameters and the turns."""

    settings: LlamafileSettings
    server: Server
    model: str
    params: Mapping[str, Any]
    conversation: Conversation

    def plan_flow(self) -> Flow[tuple[ServerInfo, Mapping[str, Any]]]:
        """What the request needs from the server: its facts, and the exact prompt size for a fair share."""
        info = yield from self.server.info_flow()
        params = yield from self.fair_share_flow(info)
        return info, params

    def fair_share_flow(self, info: ServerInfo) -> Flow[Mapping[str, Any]]:
        """The request parameters, with max_tokens set to this slot's share of the context minus the exact
        prompt when the caller set none and `llamafile_fair_share` is on: replies then stop before
        concurrent ones fill the slots' shared KV cache."""
        share = fair_share_tokens(info)
        if not self.settings.fair_share or share is None or _has_output_cap(self.params):
            return self.params
        turns = self.conversation.turns
        prompt = yield from count_flow(self.server, self.settings, turns, self.params, self.model)
        return {**self.params, "max_tokens": max(share - prompt, 1)}

    def request(
        self, plan: tuple[ServerInfo, Mapping[str, Any]], logging_obj: Any, *, stream: bool
    ) -> ChatRequest:
        info, params = plan
        request = build_chat_request(
            self.model,
            self.conversation,
            params,
            chosen_template(self.settings, info),
            stream=stream,
            constraint=info.constraint,
            constrain_auto=self.settings.constrain_auto,
            slots=info.total_slots if self.settings.slot_affinity else None,
        )
        pre_call: Callable[..., Any] | None = getattr(logging_obj, "pre_call", None)
        if pre_call is not None:  # the key is never handed to LiteLLM's logger
            pre_call(
                input=list(self.conversation.turns),
                api_key="",
                additional_args={
                    "complete_input_dict": request.payload,
                    "api_base": self.url(Endpoint.CHAT),
                },
            )
        return request

    def chat_stream(
        self, plan: tuple[ServerInfo, Mapping[str, Any]], logging_obj: Any
    ) -> tuple[HttpCall, StreamTranslator]:
        request = self.request(plan, logging_obj, stream=True)
        return chat_call(request), StreamTranslator(request, self.url(Endpoint.CHAT), self.model)

    def text_stream(self, messages: list[Any]) -> tuple[HttpCall, StreamTranslator]:
        text = text_completion_call(self.model, messages, self.params, stream=True)
        return text, StreamTranslator(None, self.url(Endpoint.COMPLETIONS), self.model)

    def url(self, path: str) -> str:
        return f"{self.settings.api_base}{path}"


def _has_output_cap(params: Mapping[str, Any]) -> bool:
    return any(params.get(key) is not None for key in ("max_tokens", "max_completion_tokens", "n_predict"))


def fair_share_tokens(info: ServerInfo) -> int | None:
    """Tokens of the context one slot may fill when every slot is busy. With its default slot count
    llama-server gives all slots one cache of n_ctx tokens; started with -np N it reports each slot's
    own n_ctx, and the share is then smaller than needed (a safe bound, documented)."""
    if not info.n_ctx or not info.total_slots:
        return None
    return info.n_ctx // info.total_slots


def _prepare(
    model: str,
    messages: list[Any],
    api_base: str | None,
    api_key: str | None,
    optional_params: Mapping[str, Any],
    timeout: float | httpx.Timeout | None,
) -> _Call:
    conversation = Conversation.of(messages)  # bad input fails here, before any request is sent
    register_zero_cost(model)
    options, params = split_call_options(optional_params)
    settings = settings_for_call(api_base, api_key, timeout, options)
    return _Call(settings, server_for(settings), model, params, conversation)


class LlamafileProvider(CustomLLM):
    """Registered for the `llamafile/` prefix by `litellm_llamafile.register()`.

    LiteLLM calls these entry points with keyword arguments; the ones not needed here
    (custom_prompt_dict, print_verbose, encoding, litellm_params, headers, client, ...) land in `_`."""

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
        litellm_params: Any = None,
        **_: Any,
    ) -> ModelResponse:
        call = _prepare(model, messages, api_base, api_key, optional_params, timeout)
        driver = call.server.driver(call.settings, model)
        if is_text_completion(litellm_params):
            text = text_completion_call(model, messages, call.params, stream=False)
            return build_text_response(driver.run(single(text)), model_response, model)
        request = call.request(driver.run(call.plan_flow()), logging_obj, stream=False)
        data = driver.run(chat_flow(request, repair=call.settings.repair_retry))
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
        litellm_params: Any = None,
        **_: Any,
    ) -> ModelResponse:
        call = _prepare(model, messages, api_base, api_key, optional_params, timeout)
        driver = call.server.async_driver(call.settings, model)
        if is_text_completion(litellm_params):
            text = text_completion_call(model, messages, call.params, stream=False)
            return build_text_response(await driver.run(single(text)), model_response, model)
        request = call.request(await driver.run(call.plan_flow()), logging_obj, stream=False)
        data = await driver.run(chat_flow(request, repair=call.settings.repair_retry))
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
        litellm_params: Any = None,
        **_: Any,
    ) -> Iterator[GenericStreamingChunk]:
        call = _prepare(model, messages, api_base, api_key, optional_params, timeout)
        driver = call.server.driver(call.settings, model)
        if is_text_completion(litellm_params):
            http, translator = call.text_stream(messages)
        else:
            http, translator = call.chat_stream(driver.run(call.plan_flow()), logging_obj)

        def chunks() -> Iterator[GenericStreamingChunk]:
            with driver.events(http) as events:
                try:
                    for event in events:
                        yield from translator.on_event(event)
                        if translator.settled:
                            break
                except errors.ReplyOutOfContext:
                    translator.cut_off()
            yield from translator.on_end()

        return chunks()

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
        litellm_params: Any = None,
        **_: Any,
    ) -> AsyncIterator[GenericStreamingChunk]:
        call = _prepare(model, messages, api_base, api_key, optional_params, timeout)
        driver = call.server.async_driver(call.settings, model)
        if is_text_completion(litellm_params):
            http, translator = call.text_stream(messages)
        else:
            http, translator = call.chat_stream(await driver.run(call.plan_flow()), logging_obj)
        async with driver.aevents(http) as events:
            try:
                async for event in events:
                    for chunk in translator.on_event(event):
                        yield chunk
                    if translator.settled:
                        break
            except errors.ReplyOutOfContext:
                translator.cut_off()
        for chunk in translator.on_end():
            yield chunk

    def embedding(
        self,
        model: str,
        input: list[Any],
        model_response: EmbeddingResponse,
        print_verbose: Any = None,
        logging_obj: Any = None,
        optional_params: dict[str, Any] | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        litellm_params: Any = None,
    ) -> EmbeddingResponse:
        inputs = embedding_inputs(input)
        options, params = split_call_options(optional_params or {})
        settings = settings_for_call(api_base, api_key, timeout, options)
        data = server_for(settings).driver(settings, model).run(embedding_flow(model, inputs, params))
        return build_embedding_response(data, model_response, model, len(inputs))

    async def aembedding(
        self,
        model: str,
        input: list[Any],
        model_response: EmbeddingResponse,
        print_verbose: Any = None,
        logging_obj: Any = None,
        optional_params: dict[str, Any] | None = None,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        litellm_params: Any = None,
    ) -> EmbeddingResponse:
        inputs = embedding_inputs(input)
        options, params = split_call_options(optional_params or {})
        settings = settings_for_call(api_base, api_key, timeout, options)
        flow = embedding_flow(model, inputs, params)
        data = await server_for(settings).async_driver(settings, model).run(flow)
        return build_embedding_response(data, model_response, model, len(inputs))
