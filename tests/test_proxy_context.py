"""Through the real LiteLLM proxy, with the official OpenAI SDK: two concurrent long replies with no
max_tokens that fill a llama-server's shared KV cache both come back with their text, the cut ones with
finish_reason "length", streaming and not, and no error reaches the client (issue 18)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from litellm_llamafile.cli.proxy_config import render_config, running_proxy
from litellm_llamafile.harness.embedded_server import EmbeddedServer

pytestmark = pytest.mark.live

PROMPTS = [
    "Tell me a very long story about Roman dodecahedrons. " * 5,
    "Write a long poem about the bronze traders of Britain. " * 5,
]


def reply(client: OpenAI, prompt: str, *, stream: bool) -> tuple[str, str | None]:
    """(text, finish_reason) of one request with no max_tokens; ignore_eos: only the context ends it."""
    common: dict[str, Any] = {
        "model": "shared",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "extra_body": {"ignore_eos": True},
    }
    if not stream:
        choice = client.chat.completions.create(**common).choices[0]
        return choice.message.content or "", choice.finish_reason
    text, reason = [], None
    for event in client.chat.completions.create(stream=True, **common):
        for streamed in event.choices:
            text.append(streamed.delta.content or "")
            reason = streamed.finish_reason or reason
    return "".join(text), reason


def test_concurrent_replies_that_fill_the_shared_cache_keep_their_text_through_the_proxy(
    own_server: Callable[..., EmbeddedServer], tmp_path: Path
) -> None:
    # Default slots: one KV cache of 256 tokens for all of them; one thread, as a loaded CI machine likes.
    server = own_server(ctx_size=256, extra_args=("-t", "1"))
    config = tmp_path / "proxy.yaml"
    # No retries: an error must reach the client, not be hidden by a second attempt.
    config.write_text(render_config([("shared", server.base_url)], num_retries=0))
    with running_proxy(config, log=tmp_path / "proxy.log") as (url, key):
        client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=600)
        for stream in (False, True):
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda p, s=stream: reply(client, p, stream=s), PROMPTS))  # type: ignore[misc]
            assert all(text for text, _ in results), (stream, results)  # nothing generated is lost
            assert all(reason == "length" for _, reason in results), (stream, results)
