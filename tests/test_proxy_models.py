"""The real LiteLLM proxy in front of the two other real models (Qwen2.5-Coder 0.5B and Gemma 3 270M), driven
by the official `openai` SDK: a forced tool call comes back valid, its result is answered, and the
proxy's token counter is the count the server then bills (Gemma's tokenizer adds BOS). Live only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from litellm_llamafile.cli.proxy_config import render_config, running_proxy

from .support.data import WEATHER
from .support.servers import Servers

pytestmark = pytest.mark.live

MODELS = ("qwen", "gemma3")
QUESTION: list[Any] = [
    {"role": "system", "content": "You are a terse assistant. Use the tools when they help."},
    {"role": "user", "content": "What is the weather in Paris right now?"},
]


@pytest.fixture(scope="module")
def proxy(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    work: Path = tmp_path_factory.mktemp("proxy-models")
    config = work / "proxy.yaml"
    config.write_text(render_config([(model, servers.url(model)) for model in MODELS]))
    with running_proxy(config, log=work / "proxy.log") as (url, key):
        yield url, key


@pytest.mark.parametrize("model", MODELS)
def test_a_forced_call_its_result_and_the_count_through_the_proxy(proxy: tuple[str, str], model: str) -> None:
    url, key = proxy
    client = OpenAI(base_url=f"{url}/v1", api_key=key)
    messages = list(QUESTION)
    forced = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER], tool_choice="required", max_tokens=32, temperature=0
    )
    (call,) = forced.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny", "temperature_c": 18}'},
    ]
    counted = httpx.post(
        f"{url}/utils/token_counter",
        params={"call_endpoint": "true"},
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": messages, "tools": [WEATHER]},
        timeout=120,
    ).json()
    answer = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER], max_tokens=24, temperature=0
    )
    assert answer.usage is not None and answer.usage.prompt_tokens == counted["total_tokens"]
    assert counted["tokenizer_type"] == "llamafile /tokenize"
