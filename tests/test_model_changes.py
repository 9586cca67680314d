"""Live: the model behind a URL changes, and the adapter follows. A server restarted on the same port
with another model mid-conversation gets the new model's role strategy and exact counts on the very next
request; a llama-server router (several models behind one URL, picked by the request's `model`) is
counted and shaped per model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer, ensure_model, free_port

from .support.servers import SentRequest

pytestmark = pytest.mark.live

OPENING: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name one Roman emperor."},
]


def _turn(url: str, messages: list[dict[str, Any]], model: str = "x") -> tuple[Any, int]:
    response = litellm.completion(
        model=f"llamafile/{model}", messages=messages, api_base=url, max_tokens=8, temperature=0, timeout=600
    )
    return response, litellm_llamafile.count_tokens(messages, model=model, api_base=url)


def _roles_sent(sent: list[SentRequest]) -> list[str]:
    chat = [r for r in sent if r.path == "/v1/chat/completions"][-1]
    return [m["role"] for m in chat.body["messages"]]


def test_a_server_restarted_with_another_model_is_learned_again(
    own_server: Callable[..., EmbeddedServer], sent: list[SentRequest]
) -> None:
    port = free_port()
    messages = [dict(m) for m in OPENING]
    # SmolLM2 under a Mistral-style template: no system role, so the system text is folded in.
    first = own_server(model="smollm2", template="mistral", port=port, ctx_size=2048, slots=1)
    url = first.base_url
    response, counted = _turn(url, messages)
    assert counted == response.usage.prompt_tokens
    assert _roles_sent(sent) == ["user"]
    first.stop()
    messages += [
        {"role": "assistant", "content": response.choices[0].message.content or ""},
        {"role": "user", "content": "And another one?"},
    ]
    # The same URL now serves Gemma 3 (a BOS-adding tokenizer, the ChatML fallback: a system role).
    own_server(model="gemma3", port=port, ctx_size=2048, slots=1)
    response, counted = _turn(url, messages)
    assert _roles_sent(sent)[0] == "system"
    assert counted == response.usage.prompt_tokens


@pytest.fixture
def router(tmp_path: Path) -> Iterator[str]:
    """llama-server in router mode over a folder holding SmolLM2 and Gemma 3 (ids: the file stems)."""
    models = tmp_path / "models"
    models.mkdir()
    for name in ("smollm2", "gemma3"):
        os.symlink(ensure_model(name), models / f"{name}.gguf")
    server = EmbeddedServer(port=free_port(), ctx_size=2048, slots=1, router_dir=models).start()
    try:
        yield server.base_url
    finally:
        server.stop()


def test_a_router_is_counted_and_shaped_per_model(router: str, sent: list[SentRequest]) -> None:
    for model in ("smollm2", "gemma3", "smollm2"):
        response, counted = _turn(router, [dict(m) for m in OPENING], model)
        assert counted == response.usage.prompt_tokens, model
        assert _roles_sent(sent)[0] == "system"
    gemma_tokenized = [r.body for r in sent if r.path == "/tokenize" and r.body.get("model") == "gemma3"]
    assert gemma_tokenized
