"""The held-out-style check: the parity calls again, through the real LiteLLM proxy (`litellm --config`
with the yaml `python -m litellm_llamafile.proxy_config` writes) and the official OpenAI SDK, against real
llama-servers: a chat server (also the text-only server for the image error) and an embeddings server."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai import OpenAI

from litellm_llamafile.cli.proxy_config import running_proxy
from litellm_llamafile.harness.embedded_server import EmbeddedServer

from .support.data import PIXEL

pytestmark = pytest.mark.live

GREEDY: dict[str, Any] = {"temperature": 0, "seed": 7}
HI = [{"role": "user", "content": "Say hi"}]


@dataclass
class Proxy:
    url: str
    key: str

    def client(self) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work = tmp_path_factory.mktemp("proxy-parity")
    with contextlib.ExitStack() as stack:
        chat = EmbeddedServer()
        stack.callback(chat.stop)
        embed = EmbeddedServer(extra_args=("--embeddings", "--pooling", "mean"))
        stack.callback(embed.stop)
        chat.start()
        embed.start()
        config = work / "proxy.yaml"
        models = ["--model", f"chat={chat.base_url}", "--model", f"embed={embed.base_url}"]
        generated = subprocess.run(
            [sys.executable, "-m", "litellm_llamafile.proxy_config", *models],
            check=True,
            capture_output=True,
            text=True,
        )
        config.write_text(generated.stdout)
        url, key = stack.enter_context(running_proxy(config, log=work / "proxy.log"))
        yield Proxy(url, key)


def test_chat(proxy: Proxy) -> None:
    answer = proxy.client().chat.completions.create(model="chat", messages=HI, max_tokens=8, **GREEDY)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.prompt_tokens > 0


def test_chat_stream_adds_up_to_the_plain_reply(proxy: Proxy) -> None:
    client = proxy.client()
    plain = client.chat.completions.create(model="chat", messages=HI, max_tokens=8, **GREEDY)  # type: ignore[arg-type]
    stream = client.chat.completions.create(model="chat", messages=HI, max_tokens=8, stream=True, **GREEDY)  # type: ignore[arg-type]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == plain.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True])
def test_chat_logprobs(proxy: Proxy, stream: bool) -> None:
    client = proxy.client()
    options: dict[str, Any] = {"max_tokens": 4, "logprobs": True, "top_logprobs": 2, **GREEDY}
    if stream:
        chunks = client.chat.completions.create(model="chat", messages=HI, stream=True, **options)  # type: ignore[arg-type]
        tokens = [
            t
            for c in chunks
            if c.choices and c.choices[0].logprobs
            for t in c.choices[0].logprobs.content or []
        ]
    else:
        answer = client.chat.completions.create(model="chat", messages=HI, **options)  # type: ignore[arg-type]
        assert answer.choices[0].logprobs is not None
        tokens = list(answer.choices[0].logprobs.content or [])
    assert tokens and all(len(t.top_logprobs) == 2 for t in tokens)
    assert all(t.logprob <= 0 for t in tokens)


def test_text_completion(proxy: Proxy) -> None:
    answer = proxy.client().completions.create(
        model="chat", prompt="The capital of France is", max_tokens=6, **GREEDY
    )
    assert answer.choices[0].text.strip()


def test_embeddings(proxy: Proxy) -> None:
    answer = proxy.client().embeddings.create(model="embed", input=["hello", "world"])
    assert [len(d.embedding) for d in answer.data] == [576, 576]
    assert answer.usage.prompt_tokens > 0


def test_an_image_to_the_text_only_server_is_a_400_saying_how_to_start_a_vision_one(proxy: Proxy) -> None:
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PIXEL}}]
    with pytest.raises(openai.BadRequestError, match="--mmproj"):
        proxy.client().chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item,misc]
            max_tokens=4,
        )
