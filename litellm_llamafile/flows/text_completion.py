"""Text completion (`litellm.text_completion(model="llamafile/...")`): the raw prompt on the server's
`/v1/completions`, no chat template. LiteLLM hands a custom provider a text completion as chat messages
(one user message per prompt) with `litellm_params["text_completion"]`; the answer goes back chat-shaped
and LiteLLM turns it into a TextCompletionResponse (logprobs included). Pure."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from litellm.types.utils import Choices, Message, ModelResponse

from ..core.errors import invalid_request, refuses_input
from ..wire.protocol import Endpoint, HttpCall
from .chat_answer import choices_of, created_of, index_of, usage_from

_CHAT_ONLY = frozenset({"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"})


def is_text_completion(litellm_params: object) -> bool:
    return isinstance(litellm_params, Mapping) and litellm_params.get("text_completion") is True


def prompt_of(messages: Sequence[object]) -> str | list[str]:
    """The prompt(s) LiteLLM wrapped as user messages."""
    prompts: list[str] = []
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, str):
            raise invalid_request(f"text completion prompt[{index}] is not text")
        prompts.append(content)
    if not prompts:
        raise invalid_request("text completion needs a prompt")
    return prompts[0] if len(prompts) == 1 else prompts


@refuses_input("the text completion's prompt or parameters")
def text_completion_call(
    model: str, messages: Sequence[object], params: Mapping[str, Any], *, stream: bool
) -> HttpCall:
    payload: dict[str, Any] = {k: v for k, v in params.items() if k not in _CHAT_ONLY and v is not None}
    if "max_completion_tokens" in payload:
        payload.setdefault("max_tokens", payload.pop("max_completion_tokens"))
    payload.update(model=model, prompt=prompt_of(messages))
    if stream:
        payload.update(stream=True, stream_options={"include_usage": True})
    else:
        payload.pop("stream_options", None)
        payload.pop("stream", None)
    return HttpCall("POST", Endpoint.COMPLETIONS, payload)


def build_text_response(data: Mapping[str, Any], model_response: ModelResponse, model: str) -> ModelResponse:
    """/v1/completions answer -> a chat-shaped ModelResponse (LiteLLM converts it for text_completion)."""
    choices = []
    for index, choice in enumerate(choices_of(data)):
        text = choice.get("text")
        choices.append(
            Choices(
                index=index_of(choice, index),
                finish_reason=choice.get("finish_reason") or "stop",
                message=Message(role="assistant", content=text if isinstance(text, str) else ""),
                logprobs=choice.get("logprobs"),
            )
        )
    model_response.choices = choices
    model_response.id = str(data.get("id") or f"cmpl-{time.time_ns()}")
    model_response.created = created_of(data)
    model_response.model = model
    usage = usage_from(data)
    if usage is not None:
        model_response.usage = usage  # type: ignore[attr-defined]
    return model_response
