"""The LiteLLM custom handler: pre-call (settings, the server, the request profile), the flows
(`flows/`) run by a driver (`wire/transport.py`), post-call (response or stream assembly)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import EmbeddingResponse, ModelResponse

from ..core.settings import LlamafileSettings, TemplateName, call_settings, split_call_options
from ..flows.adapter_report import adapter_report, attach_report
from ..flows.chat import Chunk, StreamTranslator, chat_flow, stream_call_flow
from ..flows.chat_answer import build_model_response
from ..flows.counting import request_count_flow
from ..flows.embeddings import build_embedding_response, embedding_flow, embedding_inputs
from ..flows.request import ChatRequest, RequestProfile, build_chat_request, profile_for
from ..flows.text_completion import build_text_response, is_text_completion, text_completion_call
from ..prompt.conversation import Conversation
from ..prompt.roles import has_images, strategy_for
from ..server.probe import ServerInfo, images_refused
from ..server.servers import Knowledge, Server, server_for
from ..wire.protocol import Endpoint, Flow, HttpCall
from ..wire.transport import AsyncDriver, SyncDriver
from .model_info import remember_model

Plan = tuple[Knowledge, RequestProfile, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class _Call:
    """One LiteLLM call, resolved: its settings, its server, the request parameters and the turns. Each
    kind of call is one flow here; the entry points below only pick the driver that runs it."""

    settings: LlamafileSettings
    server: Server
    model: str
    params: Mapping[str, Any]
    conversation: Conversation
    kwargs: Mapping[str, Any]

    @property
    def text(self) -> bool:
        return is_text_completion(self.kwargs.get("litellm_params"))

    def driver(self) -> SyncDriver:
        return self.server.driver(self.settings, self.model)

    def async_driver(self) -> AsyncDriver:
        return self.server.async_driver(self.settings, self.model)

    def url(self, path: str) -> str:
        """The URL as messages and LiteLLM's logging show it (no user:password)."""
        return f"{self.settings.public_base}{path}"

    # -- flows ------------------------------------------------------------------------------------

    def completion_flow(self) -> Flow[ModelResponse]:
        model_response: ModelResponse = self.kwargs["model_response"]
        if self.text:
            data = yield text_completion_call(self.model, self.kwargs["messages"], self.params, stream=False)
            return build_text_response(data, model_response, self.model)
        plan = yield from self.plan_flow()
        request = self.request(plan, stream=False)
        data = yield from chat_flow(
            request, repair=self.settings.repair_retry, on_refused=plan[0].remember_reader_refuses
        )
        self.server.saw_reply(self.model, data.get("model"))  # another model answered: learn again
        response = build_model_response(data, request, model_response, self.model)
        report = adapter_report(request, strategy_for(plan[1].strategy), len(self.conversation.turns))
        attach_report(response._hidden_params, report)
        return response

    def stream_flow(self) -> Flow[tuple[HttpCall, StreamTranslator]]:
        if self.text:
            text = text_completion_call(self.model, self.kwargs["messages"], self.params, stream=True)
            return text, StreamTranslator(None, self.url(Endpoint.COMPLETIONS), self.model)
        request = self.request((yield from self.plan_flow()), stream=True)
        call = yield from stream_call_flow(request)
        return call, StreamTranslator(request, self.url(call.path), self.model)

    def seen_to_the_end(self, chunks: Iterator[Chunk], translator: StreamTranslator) -> Iterator[Chunk]:
        """A stream's chunks, then `stream_ended`."""
        yield from chunks
        self.stream_ended(translator)

    def stream_ended(self, translator: StreamTranslator) -> None:
        """What the stream's events said its `model` is goes to the server (as completion_flow does)."""
        self.server.saw_reply(self.model, translator.answered_as)

    def plan_flow(self) -> Flow[Plan]:
        """What the request needs from the server: its profile, and the exact prompt size for a fair share."""
        known = yield from self.server.knowledge_flow(
            self.model, learn=self.settings.template is TemplateName.LEARN
        )
        info = known.info
        refused = (
            images_refused(info, self.settings.public_base, self.model)
            if has_images(self.conversation.turns)
            else None
        )
        if refused is not None:  # before anything is sent: the server said it cannot see
            raise refused
        if info.n_ctx:  # LiteLLM's model info (get_model_info, trim_messages, the proxy's checks)
            remember_model(self.model, context_window=info.n_ctx)
        profile = profile_for(self.server, self.settings, known, self.model)
        params = yield from self.fair_share_flow(known, profile)
        return known, profile, params

    def fair_share_flow(self, known: Knowledge, profile: RequestProfile) -> Flow[Mapping[str, Any]]:
        """The request parameters, with max_tokens set to this slot's share of the context minus the exact
        prompt when the caller set none and `llamafile_fair_share` is on: replies then stop before
        concurrent ones fill the slots' shared KV cache. The prompt counted is that of the very request
        sent (the same profile and conversation; max_tokens only changes the constraint's bounds)."""
        share = fair_share_tokens(known.info)
        if not self.settings.fair_share or share is None or _has_output_cap(self.params):
            return self.params
        uncapped = build_chat_request(self.model, self.conversation, self.params, profile)
        prompt = yield from request_count_flow(self.server, known, uncapped, self.model)
        if share - prompt < MIN_FAIR_SHARE_REPLY:
            # The prompt alone fills this slot's share: a cap would cut the reply to a few tokens, so
            # none is set (if the shared cache then fills, the reply still keeps its text, as "length").
            return self.params
        return {**self.params, "max_tokens": share - prompt}

    def request(self, plan: Plan, *, stream: bool) -> ChatRequest:
        _, profile, params = plan
        request = build_chat_request(self.model, self.conversation, params, profile, stream=stream)
        pre_call: Callable[..., Any] | None = getattr(self.kwargs.get("logging_obj"), "pre_call", None)
        if pre_call is not None:  # the key is never handed to LiteLLM's logger
            pre_call(
                input=list(self.conversation.turns),
                api_key="",
                additional_args={"complete_input_dict": request.payload, "api_base": self.url(Endpoint.CHAT)},
            )
        return request


def _has_output_cap(params: Mapping[str, Any]) -> bool:
    return any(params.get(key) is not None for key in ("max_tokens", "max_completion_tokens", "n_predict"))


MIN_FAIR_SHARE_REPLY = 32  # tokens; a smaller share is no useful cap (see fair_share_flow)


def fair_share_tokens(info: ServerInfo) -> int | None:
    """Tokens of the context one slot may fill when every slot is busy. With its default slot count
    llama-server gives all slots one cache of n_ctx tokens; started with -np N it reports each slot's
    own n_ctx, and the share is then smaller than needed (a safe bound, documented)."""
    if not info.n_ctx or not info.total_slots:
        return None
    return info.n_ctx // info.total_slots


def _prepare(kwargs: Mapping[str, Any], conversation: Conversation | None = None) -> _Call:
    """LiteLLM's keyword arguments (model, messages, api_base, api_key, optional_params, timeout,
    logging_obj, litellm_params, model_response, and more this adapter does not need) -> the call."""
    model: str = kwargs["model"]
    if conversation is None:
        conversation = Conversation.of(kwargs["messages"])  # bad input fails here, before any request
    options, params = split_call_options(kwargs.get("optional_params") or {})
    settings = call_settings(
        api_base=kwargs.get("api_base"),
        api_key=kwargs.get("api_key"),
        timeout=kwargs.get("timeout"),
        options=options,
    )
    return _Call(settings, server_for(settings), model, params, conversation, kwargs)


def _embedding(kwargs: Mapping[str, Any]) -> tuple[_Call, Flow[EmbeddingResponse]]:
    inputs = embedding_inputs(kwargs["input"])
    call = _prepare(kwargs, Conversation([]))

    def flow() -> Flow[EmbeddingResponse]:
        data = yield from embedding_flow(call.model, inputs, call.params)
        return build_embedding_response(data, kwargs["model_response"], call.model, len(inputs))

    return call, flow()


class LlamafileProvider(CustomLLM):
    """Registered for the `llamafile/` prefix by `litellm_llamafile.register()`. LiteLLM calls these
    entry points with keyword arguments; each runs the call's flow with the blocking or the async driver."""

    def completion(self, *_: Any, **kwargs: Any) -> ModelResponse:
        call = _prepare(kwargs)
        return call.driver().run(call.completion_flow())

    async def acompletion(self, *_: Any, **kwargs: Any) -> ModelResponse:
        call = await asyncio.to_thread(_prepare, kwargs)  # the messages are checked off the event loop
        return await call.async_driver().run(call.completion_flow())

    def streaming(self, *_: Any, **kwargs: Any) -> Iterator[Chunk]:  # type: ignore[override]
        call = _prepare(kwargs)
        driver = call.driver()
        http_call, translator = driver.run(call.stream_flow())
        return call.seen_to_the_end(driver.stream(http_call, translator), translator)

    async def astreaming(  # type: ignore[override]
        self, *_: Any, **kwargs: Any
    ) -> AsyncIterator[Chunk]:
        call = await asyncio.to_thread(_prepare, kwargs)
        driver = call.async_driver()
        http_call, translator = await driver.run(call.stream_flow())
        async for chunk in driver.astream(http_call, translator):
            yield chunk
        call.stream_ended(translator)

    def embedding(self, *_: Any, **kwargs: Any) -> EmbeddingResponse:
        call, flow = _embedding(kwargs)
        return call.driver().run(flow)

    async def aembedding(self, *_: Any, **kwargs: Any) -> EmbeddingResponse:
        call, flow = _embedding(kwargs)
        return await call.async_driver().run(flow)
