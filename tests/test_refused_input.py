"""Input the adapter cannot turn into a request is the caller's BadRequestError (HTTP 400 through the
proxy), naming what was refused: nothing is sent, and the Router does not retry it. Before issue 24 these
raised RecursionError, OverflowError or ValueError, which LiteLLM wrapped as a 500 APIConnectionError
with a traceback, and the Router retried three times."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import litellm
import pytest

from litellm_llamafile.integration.provider import LlamafileProvider

from .support.calls import HI
from .support.fake_server import FaultyServer

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])


def tool(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": "lookup", "parameters": parameters}}]


def nested(depth: int) -> dict[str, Any]:
    """Objects `depth` levels deep, each property required."""
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    inner = schema
    for _ in range(depth):
        child: dict[str, Any] = {"type": "object", "properties": {}}
        inner["properties"]["a"] = child
        inner["required"] = ["a"]
        inner = child
    return schema


def one_property(**spec: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"n": spec}, "required": ["n"]}


FORCED = {"tool_choice": "required", "max_tokens": 50}
# name -> (the call's extra arguments, a word the error must name)
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "thought schema '[' * 100000": ({"llamafile_thought_schema": "[" * 100_000}, "thought_schema"),
    "parameters nested 300 deep": ({"tools": tool(nested(300)), **FORCED}, "tool"),
    "minimum Infinity": (
        {"tools": tool(one_property(type="integer", minimum=float("inf"))), **FORCED},
        "tool",
    ),
    "minimum NaN": ({"tools": tool(one_property(type="integer", minimum=float("nan"))), **FORCED}, "tool"),
    "maxLength 'x'": ({"tools": tool(one_property(type="string", maxLength="x")), **FORCED}, "tool"),
}


@local_only
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("case", REFUSED)
def test_input_that_cannot_be_used_is_a_bad_request_naming_it(
    faulty: Callable[..., FaultyServer], case: str, mode: str
) -> None:
    server = faulty()
    extra, named = REFUSED[case]
    call: Any = litellm.completion if mode == "sync" else litellm.acompletion
    with pytest.raises(litellm.BadRequestError) as caught:
        result = call(model="llamafile/smol", messages=HI, api_base=server.url, **extra)
        if mode == "async":
            asyncio.run(result)
    assert caught.value.status_code == 400
    assert named in str(caught.value).lower()
    assert "Traceback" not in str(caught.value)
    assert server.chat_requests == []


@local_only
def test_the_router_does_not_retry_input_it_cannot_use(
    faulty: Callable[..., FaultyServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = faulty()
    attempts: list[int] = []
    completion = LlamafileProvider.completion

    def counted(self: LlamafileProvider, *args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        return completion(self, *args, **kwargs)

    monkeypatch.setattr(LlamafileProvider, "completion", counted)
    router = litellm.Router(
        model_list=[{"model_name": "m", "litellm_params": {"model": "llamafile/m", "api_base": server.url}}],
        num_retries=3,
    )
    extra, _ = REFUSED["parameters nested 300 deep"]
    with pytest.raises(litellm.BadRequestError):
        router.completion(model="m", messages=HI, **extra)
    assert len(attempts) == 1
