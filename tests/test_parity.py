"""Registering the adapter takes nothing away: every call LiteLLM's built-in `llamafile` provider serves
still works, on real servers, with the same shape of answer. Each call runs once on the built-in, once on
the adapter; the test fails when the adapter loses what the built-in had."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer

from .support.data import PIXEL
from .support.servers import Servers

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def embeddings_url() -> Iterator[str]:
    server = EmbeddedServer(extra_args=("--embeddings", "--pooling", "mean")).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def both(call: Callable[[], Any]) -> tuple[Any, Any]:
    """The call's answer from the built-in provider, then from the adapter."""
    litellm_llamafile.unregister()
    try:
        builtin = call()
    finally:
        litellm_llamafile.register()
    return builtin, call()


def test_embeddings(embeddings_url: str) -> None:
    def call() -> Any:
        return litellm.embedding(
            model="llamafile/x", input=["hello", "world"], api_base=f"{embeddings_url}/v1"
        )

    builtin, adapter = both(call)
    assert len(adapter.data) == len(builtin.data) == 2
    assert len(adapter.data[0]["embedding"]) == len(builtin.data[0]["embedding"]) > 0
    assert adapter.usage.prompt_tokens > 0


def test_async_embeddings(embeddings_url: str) -> None:
    answer = asyncio.run(
        litellm.aembedding(model="llamafile/x", input=["hello"], api_base=f"{embeddings_url}/v1")
    )
    assert len(answer.data) == 1 and len(answer.data[0]["embedding"]) > 0


def test_embeddings_on_a_server_without_them_say_how_to_start_one(servers: Servers) -> None:
    with pytest.raises(litellm.InternalServerError) as caught:  # llama-server answers 501
        litellm.embedding(model="llamafile/x", input=["hello"], api_base=servers.url("chatml"))
    assert "--embeddings" in str(caught.value)


@pytest.mark.parametrize("stream", [False, True])
def test_text_completion(servers: Servers, stream: bool) -> None:
    url = servers.url("chatml")

    def call() -> str:
        answer = litellm.text_completion(
            model="llamafile/x",
            prompt="The capital of France is",
            api_base=f"{url}/v1",
            max_tokens=6,
            temperature=0,
            stream=stream,
        )
        if stream:
            return "".join(chunk.choices[0].text or "" for chunk in answer)
        return str(answer.choices[0].text)

    builtin, adapter = both(call)
    assert adapter and adapter == builtin  # the same raw prompt, greedy: the same text


def test_logprobs(servers: Servers) -> None:
    def call() -> Any:
        return litellm.completion(
            model="llamafile/x",
            messages=[{"role": "user", "content": "Say hi"}],
            api_base=f"{servers.url('chatml')}/v1",
            max_tokens=3,
            temperature=0,
            logprobs=True,
            top_logprobs=2,
        )

    builtin, adapter = both(call)
    assert builtin.choices[0].logprobs is not None
    content = adapter.choices[0].logprobs.content
    assert content and len(content[0].top_logprobs) == 2


def test_streaming_logprobs(servers: Servers) -> None:
    def call() -> list[Any]:
        chunks = litellm.completion(
            model="llamafile/x",
            messages=[{"role": "user", "content": "Say hi"}],
            api_base=f"{servers.url('chatml')}/v1",
            max_tokens=4,
            temperature=0,
            stream=True,
            logprobs=True,
            top_logprobs=2,
        )
        return [
            t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content
        ]

    builtin, adapter = both(call)
    assert builtin, "the built-in streams logprobs"
    assert [t.token for t in adapter] == [t.token for t in builtin]  # greedy: the same tokens
    assert all(len(t.top_logprobs) == 2 for t in adapter)


def test_an_image_part_reaches_a_text_only_server_only_on_the_builtin(servers: Servers) -> None:
    """The built-in forwards and llama-server answers that it has no image input; the adapter says so
    itself, before any request, with how to start a server that can see."""
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PIXEL}}]

    def call() -> BaseException:
        with pytest.raises((litellm.InternalServerError, litellm.BadRequestError)) as caught:
            litellm.completion(
                model="llamafile/x",
                messages=[{"role": "user", "content": content}],
                api_base=f"{servers.url('chatml')}/v1",
                max_tokens=4,
            )
        return caught.value

    builtin, adapter = both(call)
    assert "image input is not supported" in str(builtin)  # llama-server: 500
    assert isinstance(adapter, litellm.BadRequestError) and "--mmproj" in str(adapter)


def test_embeddings_asked_for_base64_as_the_openai_sdk_does(embeddings_url: str) -> None:
    """The OpenAI SDK asks for base64 unless told otherwise, and reads float lists as well."""
    answer = litellm.embedding(
        model="llamafile/x", input=["hello"], api_base=f"{embeddings_url}/v1", encoding_format="base64"
    )
    assert len(answer.data[0]["embedding"]) == 576
