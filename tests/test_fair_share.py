"""`llamafile_fair_share`: with no max_tokens, a reply stops at its slot's share of the shared cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import litellm
import pytest

from litellm_llamafile.harness.embedded_server import EmbeddedServer

pytestmark = pytest.mark.live


def _share(server: EmbeddedServer) -> int:
    props = httpx.get(f"{server.base_url}/props", timeout=30).json()
    n_ctx = props["default_generation_settings"]["n_ctx"]
    return int(n_ctx) // int(props["total_slots"])


def test_a_reply_with_no_max_tokens_stops_at_the_slot_share_minus_its_exact_prompt(
    own_server: Callable[..., EmbeddedServer],
) -> None:
    server = own_server(ctx_size=512)  # default slot count: one cache shared by all slots
    share = _share(server)
    common: dict[str, Any] = {"model": "llamafile/smol", "api_base": server.base_url, "temperature": 0}
    short = [{"role": "user", "content": "Tell me a very long story about Roman dodecahedrons."}]
    reply = litellm.completion(messages=short, ignore_eos=True, llamafile_fair_share=True, **common)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == share - reply.usage.prompt_tokens

    # A caller's own max_tokens wins over the share.
    capped = litellm.completion(messages=short, max_tokens=5, llamafile_fair_share=True, **common)
    assert capped.usage.completion_tokens <= 5

    # A prompt that fills the share alone gets no cap at all rather than a reply of a token or two.
    long = [{"role": "user", "content": "Write about the bronze traders of Britain. " * 16}]
    uncapped = litellm.completion(messages=long, max_tokens=None, llamafile_fair_share=True, **common)
    assert uncapped.usage.prompt_tokens > share - 32
    assert uncapped.usage.completion_tokens > 32 or uncapped.choices[0].finish_reason == "stop"
