"""Embeddings: `litellm.embedding(model="llamafile/...")` on the server's `/v1/embeddings`, or classic
llamafile's `/embedding` (one text per request) where that is all the server has. Pure, plus the flow."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from litellm.exceptions import NotFoundError
from litellm.types.utils import Embedding, EmbeddingResponse, Usage

from ..core.errors import BadAnswer, invalid_request, refuses_input
from ..wire.protocol import JSON, Endpoint, Flow, HttpCall
from .chat_answer import count_of

CLASSIC_EMBEDDING_PATH = "/embedding"


@refuses_input("the embedding input")
def embedding_inputs(value: object) -> list[Any]:
    """LiteLLM's `input`: one string, a list of strings, or token-id lists; anything else is bad input."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise invalid_request("embedding input must be a non-empty string or list")
    for index, item in enumerate(items):
        if not isinstance(item, str) and not (
            isinstance(item, list) and all(isinstance(t, int) for t in item)
        ):
            raise invalid_request(f"input[{index}] is neither text nor a list of token ids")
    return items


def embedding_flow(model: str, inputs: Sequence[Any], params: Mapping[str, Any]) -> Flow[JSON]:
    """The server's OpenAI-shaped answer; a server without /v1/embeddings (404) is asked the classic way."""
    body = {**params, "model": model, "input": list(inputs)}
    try:
        return (yield HttpCall("POST", Endpoint.EMBEDDINGS, body))
    except NotFoundError:
        pass
    data: list[JSON] = []
    for index, item in enumerate(inputs):
        answer = yield HttpCall("POST", CLASSIC_EMBEDDING_PATH, {"content": item})
        data.append({"object": "embedding", "index": index, "embedding": answer.get("embedding")})
    return {"object": "list", "data": data, "model": model}


def _vector(item: object) -> list[float] | None:
    vector = item.get("embedding") if isinstance(item, Mapping) else None
    if isinstance(vector, list) and vector and isinstance(vector[0], list):
        vector = vector[0]  # llama-server's pooling-none shape: one vector per token; the first is pooled
    if not isinstance(vector, list) or not all(_component(v) for v in vector):
        return None
    return [float(v) for v in vector]


def _component(value: object) -> bool:
    """A finite number a float can hold (JSON allows 10**400 and NaN, a vector does not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def build_embedding_response(
    data: Mapping[str, Any], model_response: EmbeddingResponse, model: str, count: int
) -> EmbeddingResponse:
    """Server answer -> LiteLLM's EmbeddingResponse, one vector per input, `usage` from the server."""
    items = data.get("data")
    found = [_vector(item) for item in items] if isinstance(items, list) else []
    vectors = [v for v in found if v is not None]
    if len(vectors) != count or len(found) != count:
        raise BadAnswer(f"JSON that is not {count} vector(s) of finite numbers", data)
    model_response.data = [
        Embedding(embedding=vector, index=index, object="embedding") for index, vector in enumerate(vectors)
    ]
    model_response.model = model
    usage = data.get("usage")
    if isinstance(usage, Mapping) and usage.get("prompt_tokens") is not None:
        prompt = count_of(data, usage["prompt_tokens"])
        total = count_of(data, usage.get("total_tokens")) or prompt
        model_response.usage = Usage(prompt_tokens=prompt, completion_tokens=0, total_tokens=total)
    return model_response
