"""A server's chat answer as LiteLLM's `ModelResponse`: its choices read (every wrong shape an
`errors.BadAnswer`, which the drivers turn into an `APIError` quoting what was received), the reply
text split into reasoning, content and tool calls (`reply/parsing.py`), the usage with cached tokens.
Pure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Choices,
    Function,
    Message,
    ModelResponse,
    Usage,
)

from ..core.errors import BadAnswer
from ..prompt.call_checks import as_text, invalid_calls
from ..reply.parsing import ParsedReply, parse_tool_calls, split_reasoning
from ..reply.streaming import final_finish_reason
from .request import ChatRequest


def _shape_error(data: object, why: str) -> BadAnswer:
    return BadAnswer(f"JSON that {why}", data)


def choices_of(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The answer's choices, each a mapping; a BadAnswer (quoting the answer) for any other shape."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, Mapping) for c in choices):
        raise _shape_error(data, "has no list of choices")
    return choices


def choice_text(choice: Mapping[str, Any], part: str = "message", field: str = "content") -> str:
    """`choice[part][field]` as text ("" when absent); a BadAnswer for a message or content of the
    wrong type, never a crash."""
    message = choice.get(part)
    if message is None:
        return ""
    if not isinstance(message, Mapping):
        raise _shape_error(choice, f"has a {part} that is not an object")
    content = message.get(field)
    if content is None:
        return ""
    if not isinstance(content, str):
        raise _shape_error(choice, f"has {part}.{field} that is not text")
    return content


# The largest count or time an answer may carry: past it a number is no count (1e400 reads as inf).
_LARGEST = 2**63 - 1


def _whole_number(value: object) -> int | None:
    """A JSON number that is a whole, non-negative, finite int (3 or 3.0), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if 0 <= value <= _LARGEST else None


def count_of(data: Mapping[str, Any], value: object) -> int:
    """A token count of an answer (absent: 0); a BadAnswer quoting `data` for anything but a count."""
    if value is None:
        return 0
    count = _whole_number(value)
    if count is None:
        raise _shape_error(data, "has token counts that are not numbers")
    return count


def created_of(data: Mapping[str, Any]) -> int:
    """The answer's `created` Unix time (absent or 0: now); a BadAnswer for anything but a time."""
    value = data.get("created")
    if value is None or value == 0:
        return int(time.time())
    created = _whole_number(value)
    if created is None:
        raise _shape_error(data, "has a created that is not a Unix time")
    return created


def index_of(choice: Mapping[str, Any], default: int) -> int:
    """A choice's `index` (absent: its position); a BadAnswer for anything but an index."""
    value = choice.get("index")
    index = default if value is None else _whole_number(value)
    if index is None:
        raise _shape_error(choice, "has an index that is not a number")
    return index


def first_reply(data: Mapping[str, Any]) -> tuple[str, str | None]:
    choice = choices_of(data)[0]
    return choice_text(choice), choice.get("finish_reason")


def usage_from(data: Mapping[str, Any]) -> Usage | None:
    """OpenAI usage from a server answer, with cached prompt tokens (llama.cpp reports them as
    usage.prompt_tokens_details.cached_tokens, or only as timings.cache_n on older builds)."""
    usage = data.get("usage")
    if usage is None:
        return None
    if not isinstance(usage, Mapping):
        raise _shape_error(data, "has a usage that is not an object")
    prompt = count_of(data, usage.get("prompt_tokens"))
    completion = count_of(data, usage.get("completion_tokens"))
    total = count_of(data, usage.get("total_tokens")) or prompt + completion
    details = usage.get("prompt_tokens_details")
    cached: int | None = None
    if isinstance(details, Mapping) and details.get("cached_tokens") is not None:
        cached = count_of(data, details["cached_tokens"])
    else:
        timings = data.get("timings")
        if isinstance(timings, Mapping) and timings.get("cache_n") is not None:
            cached = count_of(data, timings["cache_n"])
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
    choices = choices_of(data)
    response_id = str(data.get("id") or f"chatcmpl-{time.time_ns()}")
    new_choices = []
    for index, choice in enumerate(choices):
        text = choice_text(choice)
        server_reasoning = choice_text(choice, field="reasoning_content")
        server_reason = choice.get("finish_reason")
        seed = response_id if index == 0 else f"{response_id}/{index}"
        reply = parse_reply(text, request, id_seed=seed, server_reason=server_reason)
        if request.parses_tools:  # a call its tool's schema rejects is given back as text (call_checks)
            reply = as_text(reply, invalid_calls(reply, request.tools))
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
    model_response.created = created_of(data)
    model_response.model = model
    usage = usage_from(data)
    if usage is not None:
        model_response.usage = usage  # type: ignore[attr-defined]
    if isinstance(data.get("timings"), Mapping):  # llama.cpp's prefill/decode timings, for benchmarks
        model_response._hidden_params["llamafile_timings"] = dict(data["timings"])
    return model_response


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
