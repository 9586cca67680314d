"""What real servers running the newer families' official templates (SmolLM2 under each) say about the reply:
the family read from the template in /props, and whether the reply starts inside a think block, read from
the generation prompt llama-server renders with thinking on and off; those prompts end as the case corpus
says (tests/support/families), so the corpus's thinking and thinking-off cases are the real ones. And a long
forced call streams its arguments as the server writes them, through the chat endpoint and through the
text route a template's own tool rendering takes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import litellm
import pytest

from litellm_llamafile.reply.families import expected_reply
from litellm_llamafile.server.probe import probe_flow

from .support.data import GREEDY
from .support.families.common import Format
from .support.families.deepseek import V3_2, V4
from .support.families.gemma import GEMMA4
from .support.families.glm import GLM47
from .support.families.kimi import K3
from .support.families.qwen import QWEN3_5
from .support.flows import request_on, run_on
from .support.servers import Servers

pytestmark = pytest.mark.vcr

WRITE_FILE = {
    "type": "function",
    "function": {
        "name": "write_file",
        "description": "Write a text file.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["path", "content"],
        },
    },
}
MESSAGES = [{"role": "user", "content": "Write a Python script that prints the numbers 1 to 20."}]
# role, the family its template says, the corpus format, the template variable that switches thinking
FAMILIES = [
    ("qwen35", "qwen3_coder", QWEN3_5, "enable_thinking"),
    ("glm47", "glm", GLM47, "enable_thinking"),
    ("dsv32", "deepseek_v3_2", V3_2, "enable_thinking"),
    ("dsv4", "deepseek_v4", V4, "enable_thinking"),
    ("dsv41", "deepseek_v4", V4, "enable_thinking"),
    ("kimi_k3", "kimi_k3", K3, "thinking"),
    ("gemma4", "gemma4", GEMMA4, "enable_thinking"),
]


@pytest.fixture(params=FAMILIES, ids=[f[0] for f in FAMILIES])
def family(request: pytest.FixtureRequest, servers: Servers) -> Iterator[tuple[str, str, Format, str]]:
    """One template's server at a time (started before the cassette records, stopped after)."""
    servers.url(request.param[0])
    yield request.param
    servers.release(request.param[0])


def test_the_template_and_its_generation_prompt_say_what_the_reply_looks_like(
    family: tuple[str, str, Format, str], servers: Servers
) -> None:
    role, name, fmt, switch = family
    url = servers.url(role)
    info = run_on(url, probe_flow())
    assert info.reply.family == name
    for thinking, tail in ((True, fmt.thinking_prompt), (False, fmt.disabled_prompt)):
        body = {"messages": MESSAGES, "tools": [WRITE_FILE], "chat_template_kwargs": {switch: thinking}}
        prompt = request_on(url)("POST", "/apply-template", body)["prompt"]
        assert prompt.rstrip().endswith(tail.rstrip()), (thinking, prompt[-80:])
        opened = bool(tail.strip()) and thinking
        assert expected_reply(info.chat_template, prompt).starts_in_reasoning is opened


def _streamed_call(**kwargs: Any) -> tuple[list[Any], Any]:
    """A forced write_file, streamed: the chunks, and the message they build into."""
    chunks = list(
        litellm.completion(
            model="llamafile/smol",
            messages=MESSAGES,
            tools=[WRITE_FILE],
            tool_choice="required",
            max_tokens=120,
            stream=True,
            **GREEDY,
            **kwargs,
        )
    )
    return chunks, litellm.stream_chunk_builder(chunks).choices[0]


def _argument_chunks(chunks: list[Any]) -> list[int]:
    found = []
    for index, chunk in enumerate(chunks):
        calls = chunk.choices[0].delta.tool_calls if chunk.choices else None
        if calls and any(c.function.arguments for c in calls):
            found.append(index)
    return found


@pytest.fixture(params=["chatml", "qwen35"])
def streaming_role(request: pytest.FixtureRequest, servers: Servers) -> Iterator[str]:
    servers.url(request.param)
    yield request.param
    servers.release(request.param)


def test_a_long_forced_call_streams_its_arguments_as_the_server_writes_them(
    servers: Servers, streaming_role: str
) -> None:
    """chatml: the chat endpoint and the adapter's signatures; qwen35: the template's own tool rendering
    (llamafile_tool_prompt="native"), sampled from /v1/completions."""
    chunks, built = _streamed_call(api_base=servers.url(streaming_role), llamafile_tool_prompt="native")
    (call,) = built.message.tool_calls
    assert call.function.name == "write_file" and built.finish_reason in ("tool_calls", "length")
    arguments = _argument_chunks(chunks)
    # The arguments came in many pieces, the first of them long before the stream ended.
    assert len(arguments) >= 10, arguments
    assert arguments[0] < len(chunks) // 3, (arguments[0], len(chunks))
    if built.finish_reason == "tool_calls":
        assert isinstance(json.loads(call.function.arguments)["content"], str)
