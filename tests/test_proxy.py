"""The real LiteLLM proxy (`litellm --config`, the yaml from `litellm_llamafile.cli.proxy_config`) in front of
real llama.cpp servers, driven by unmodified clients: the official `openai` SDK and LangChain's `ChatOpenAI`.

Live only (`pytest --live`): one proxy for the module, serving
    smart    -> a ChatML server            fast   -> a Mistral-template server
    pool     -> two ChatML replicas (one is SIGKILLed by a test)
    warming  -> a server still loading its model (503) and a ready replica
    gpt-4o   -> alias of smart (the kind of name AutoGPT insists on)
Every server runs with --metrics, so a test can see which server did the work.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

import litellm_llamafile
from litellm_llamafile.cli.proxy_config import render_config, running_proxy
from litellm_llamafile.harness.embedded_server import EmbeddedServer, ensure_llama_server, free_port

from .support.data import FINISH, SEARCH, SYSTEM, TASK
from .support.fake_server import FaultyServer, answer_chat
from .support.schemas import cross_product, nested_optional

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
LITELLM = Path(sys.executable).with_name("litellm")
GREEDY: dict[str, Any] = {"temperature": 0, "seed": 7}
TOOLS: list[Any] = [SEARCH, FINISH]


# -- the processes ---------------------------------------------------------------------------------


@dataclass
class LoadingServer:
    """A real llama-server whose model never finishes loading: its model path is a FIFO nobody writes,
    so it listens and answers every request with 503 "Loading model", as a server that is starting."""

    fifo: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoadingServer:
        os.mkfifo(self.fifo)
        command = EmbeddedServer(port=self.port).command(ensure_llama_server(), self.fifo)
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 503:
                    return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the loading llama-server did not come up")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Proxy:
    url: str
    key: str
    servers: dict[str, EmbeddedServer]
    loading: LoadingServer

    def client(self, **kwargs: Any) -> OpenAI:
        return OpenAI(base_url=f"{self.url}/v1", api_key=self.key, **kwargs)


def litellm_proxy(config: Path, log: Path) -> contextlib.AbstractContextManager[tuple[str, str]]:
    """`litellm --config <config>` on a free port, with a strong random master key; always terminated."""
    return running_proxy(config, log=log)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work = tmp_path_factory.mktemp("proxy")
    with contextlib.ExitStack() as stack:
        servers: dict[str, EmbeddedServer] = {}
        for role, template in [("smart", "chatml"), ("fast", "mistral"), ("r1", "chatml"), ("r2", "chatml")]:
            server = EmbeddedServer(template=template, extra_args=("--metrics",))
            stack.callback(server.stop)
            servers[role] = server.start()
        loading = LoadingServer(work / "never-loaded.gguf")
        stack.callback(loading.stop)
        loading.start()
        config = work / "proxy.yaml"
        config.write_text(
            render_config(
                [
                    ("smart", servers["smart"].base_url),
                    ("fast", servers["fast"].base_url),
                    ("pool", servers["r1"].base_url),
                    ("pool", servers["r2"].base_url),
                    ("warming", loading.base_url),
                    ("warming", servers["r1"].base_url),
                ],
                aliases={"gpt-4o": "smart"},
            )
        )
        url, key = stack.enter_context(litellm_proxy(config, work / "proxy.log"))
        yield Proxy(url, key, servers, loading)


def tokens_predicted(server: EmbeddedServer) -> float:
    """llama-server's own count of tokens it generated (from --metrics)."""
    for line in httpx.get(f"{server.base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("llamacpp:tokens_predicted_total "):
            return float(line.split()[1])
    raise AssertionError("no llamacpp:tokens_predicted_total in /metrics")


def served_by(proxy: Proxy, raw: Any) -> str:
    """Which server LiteLLM's Router sent a request to (the proxy's response header)."""
    base = raw.headers.get("x-litellm-model-api-base")
    assert isinstance(base, str), dict(raw.headers)
    return base.rstrip("/").removesuffix("/v1")


def assembled_tool_calls(chunks: Any) -> tuple[list[tuple[str, Any]], str | None]:
    """Tool calls rebuilt from streamed deltas the way OpenAI clients do it (by index)."""
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in chunks:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
            if delta.function and delta.function.name:
                call["name"] += delta.function.name
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
    return [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())], finish


# -- (a) (b) chat and streaming ----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["smart", "fast"])
def test_chat_with_a_system_prompt(proxy: Proxy, model: str) -> None:
    response = proxy.client().chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}],
        max_tokens=24,
        **GREEDY,
    )
    choice = response.choices[0]
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert response.usage is not None and response.usage.prompt_tokens > 0
    if model == "smart":  # SmolLM2 often ends at once in the Mistral format it was not trained on
        assert choice.message.content
        assert response.usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["smart", "fast"])
def test_stream_carries_the_same_reply_as_the_non_streamed_call(proxy: Proxy, model: str) -> None:
    client = proxy.client()
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": TASK}],
        "max_tokens": 24,
        **GREEDY,
    }
    whole = client.chat.completions.create(**kwargs)
    chunks = list(
        client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [c.usage for c in chunks if c.usage is not None]
    if model == "smart":
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # it really streamed
    assert text == whole.choices[0].message.content
    assert reasons == [whole.choices[0].finish_reason]
    assert usage and whole.usage is not None
    assert usage[-1].prompt_tokens == whole.usage.prompt_tokens


# -- (c) tools ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["smart", "fast"])
def test_required_tool_call_then_the_tool_result_is_answered(proxy: Proxy, model: str) -> None:
    client = proxy.client()
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": TASK},
    ]
    first = client.chat.completions.create(
        model=model, messages=messages, tools=TOOLS, tool_choice="required", max_tokens=160, **GREEDY
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert calls
    for call in calls:
        assert call.type == "function" and call.id
        assert call.function.name in {"web_search", "finish"}
        assert isinstance(json.loads(call.function.arguments), dict)
    messages.append(choice.message.model_dump(exclude_none=True))
    for call in calls:
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": "Roman dodecahedrons are hollow bronze objects of unknown purpose.",
            }
        )
    follow_up = client.chat.completions.create(
        model=model, messages=messages, tools=TOOLS, max_tokens=48, **GREEDY
    ).choices[0]
    assert follow_up.message.content or follow_up.message.tool_calls
    assert follow_up.finish_reason in ("stop", "length", "tool_calls")


@pytest.mark.parametrize(("model", "roles"), [("smart", "chatml"), ("fast", "mistral")])
def test_a_client_behind_the_proxy_sees_what_the_adapter_did(proxy: Proxy, model: str, roles: str) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}],
        tools=TOOLS,
        tool_choice="required",
        max_tokens=64,
        **GREEDY,
    )
    headers = {k.lower(): v for k, v in raw.headers.items() if "x-llamafile-" in k.lower()}
    report = {k[k.index("x-llamafile-") + len("x-llamafile-") :]: v for k, v in headers.items()}
    assert report["roles"].startswith(f"{roles} (")
    assert report["tools"] == "2 tools as signatures in the system text"
    assert report["constraint"].endswith("(tool_choice=required)")


@pytest.mark.parametrize("model", ["smart", "fast"])
def test_streamed_tool_call_equals_the_non_streamed_one(proxy: Proxy, model: str) -> None:
    client = proxy.client()
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": TASK}],
        "tools": TOOLS,
        "tool_choice": "required",
        "max_tokens": 160,
        # Both requests evaluate the prompt from scratch: llama-server's greedy reply to a prompt it has
        # cached can differ from its reply to the same prompt evaluated fresh (batching numerics).
        "extra_body": {"cache_prompt": False},
        **GREEDY,
    }
    whole = client.chat.completions.create(**kwargs).choices[0]
    streamed, finish = assembled_tool_calls(client.chat.completions.create(stream=True, **kwargs))
    expected = [(c.function.name, json.loads(c.function.arguments)) for c in whole.message.tool_calls or []]
    assert expected
    assert streamed == expected
    assert finish == whole.finish_reason == "tool_calls"


# -- (d) exact token counts --------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["smart", "fast"])
def test_token_counter_endpoint_is_the_servers_exact_count(proxy: Proxy, model: str) -> None:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]
    answer = httpx.post(
        f"{proxy.url}/utils/token_counter",
        params={"call_endpoint": "true"},
        headers={"Authorization": f"Bearer {proxy.key}"},
        json={"model": model, "messages": messages, "tools": TOOLS},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = litellm_llamafile.count_tokens(
        messages, model=f"llamafile/{model}", tools=TOOLS, api_base=proxy.servers[model].base_url
    )
    assert body["total_tokens"] == expected
    assert body["tokenizer_type"] == "llamafile /tokenize"  # the adapter answered, not tiktoken
    # ... and it is what the server then bills for that request.
    usage = (
        proxy.client()
        .chat.completions.create(model=model, messages=messages, tools=TOOLS, max_tokens=4, **GREEDY)
        .usage
    )
    assert usage is not None and usage.prompt_tokens == expected


# -- (e) LangChain -----------------------------------------------------------------------------------


def test_langchain_chat_openai_chats_and_calls_bound_tools(proxy: Proxy) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(
        model="smart", base_url=f"{proxy.url}/v1", api_key=proxy.key, max_tokens=48, temperature=0, seed=7
    )
    reply = llm.invoke([("system", SYSTEM), ("human", TASK)])
    assert isinstance(reply.content, str) and reply.content
    with_tools = llm.bind_tools(TOOLS, tool_choice="required")
    called = with_tools.invoke([("human", TASK)])
    assert called.tool_calls
    for call in called.tool_calls:
        assert call["name"] in {"web_search", "finish"}
        assert isinstance(call["args"], dict)
        assert call["id"]


# -- (f) smart / fast --------------------------------------------------------------------------------


def test_each_model_name_reaches_its_own_server(proxy: Proxy) -> None:
    client = proxy.client()
    for model, alias in [("smart", "smart"), ("fast", "fast"), ("smart", "gpt-4o")]:
        before = {role: tokens_predicted(proxy.servers[role]) for role in ("smart", "fast")}
        raw = client.chat.completions.with_raw_response.create(
            model=alias, messages=[{"role": "user", "content": "Name a Roman emperor."}], max_tokens=8
        )
        assert raw.parse().choices[0].message.content is not None
        assert served_by(proxy, raw) == proxy.servers[model].base_url
        after = {role: tokens_predicted(proxy.servers[role]) for role in ("smart", "fast")}
        other = "fast" if model == "smart" else "smart"
        assert after[model] > before[model], f"{alias}: {model}'s server generated nothing"
        assert after[other] == before[other], f"{alias}: {other}'s server did the work"


def test_alias_is_listed_in_v1_models(proxy: Proxy) -> None:
    """Clients such as AutoGPT only use a model that GET /v1/models lists."""
    listed = {model.id for model in proxy.client().models.list()}
    assert {"smart", "fast", "gpt-4o"} <= listed


def test_example_agent_finishes_through_the_proxy(proxy: Proxy, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("agent_example", ROOT / "examples" / "agent.py")
    assert spec is not None and spec.loader is not None
    agent = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = agent  # its dataclasses look their module up
    try:
        spec.loader.exec_module(agent)
    finally:
        del sys.modules[spec.name]
    before = {role: tokens_predicted(proxy.servers[role]) for role in ("smart", "fast")}
    run = agent.run_agent(agent.openai_send(proxy.client()), workspace=tmp_path, max_steps=3)
    assert run.steps and run.steps[-1].name == "finish"
    assert run.answer
    assert run.steps[0].model == "smart"
    assert tokens_predicted(proxy.servers["smart"]) > before["smart"]
    if any(step.model == "fast" for step in run.steps):
        assert tokens_predicted(proxy.servers["fast"]) > before["fast"]


# -- (g) replicas ------------------------------------------------------------------------------------


def test_a_replica_still_loading_is_skipped(proxy: Proxy) -> None:
    client = proxy.client(max_retries=0)  # no client-side retries: the proxy alone must cope
    for number in range(4):
        raw = client.chat.completions.with_raw_response.create(
            model="warming", messages=[{"role": "user", "content": f"Say {number}."}], max_tokens=4
        )
        assert raw.parse().choices[0].message.content is not None
        assert served_by(proxy, raw) == proxy.servers["r1"].base_url
    assert httpx.get(f"{proxy.loading.base_url}/health", timeout=5).status_code == 503  # still loading


def test_every_request_is_answered_when_a_replica_is_killed_mid_run(proxy: Proxy) -> None:
    client = proxy.client(max_retries=0)
    victim, survivor = proxy.servers["r2"], proxy.servers["r1"]

    def ask(number: int) -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model="pool", messages=[{"role": "user", "content": f"Count to {number}."}], max_tokens=12
        )
        content = raw.parse().choices[0].message.content
        assert content is not None
        return served_by(proxy, raw), content

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(ask, number) for number in range(9)]
        for done, _ in enumerate(concurrent.futures.as_completed(futures), start=1):
            if done == 3:
                victim.kill()  # SIGKILL while the other requests are queued or in flight
                break
        answers = [future.result() for future in futures]  # raises if any request failed
    assert len(answers) == 9 and all(content for _, content in answers)
    # After the crash: plain and streamed requests keep working, all on the survivor.
    for number in range(4):
        assert ask(number)[0] == survivor.base_url
        stream = client.chat.completions.create(
            model="pool", messages=[{"role": "user", "content": f"Say {number}."}], max_tokens=6, stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


# -- the trust boundary --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra", [{"llamafile_api_base": "EVIL"}, {"llamafile_loading_wait": 6}, {"llamafile_connect_retries": 9}]
)
def test_a_client_cannot_redirect_a_deployment_or_override_its_resource_options(
    proxy: Proxy, extra: dict[str, Any]
) -> None:
    evil = FaultyServer(answer_chat("stolen"))
    try:
        body = {k: (evil.url if v == "EVIL" else v) for k, v in extra.items()}
        for model in ("fast", "gpt-4o", "pool"):
            with pytest.raises(BadRequestError) as info:
                proxy.client(max_retries=0).chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4, extra_body=body
                )
            assert next(iter(extra)) in str(info.value)
        assert evil.requests == []
    finally:
        evil.close()


def test_a_client_may_set_a_behaviour_option(proxy: Proxy) -> None:
    response = proxy.client().chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": TASK}],
        max_tokens=8,
        extra_body={"llamafile_repair_retry": True},
        **GREEDY,
    )
    assert response.choices[0].finish_reason in ("stop", "length")


# -- schemas built to stall the proxy ----------------------------------------------------------------------

STALLING = {  # issue 24's reproductions, each refused with the limit it passed
    "nesting": (nested_optional(100), "schema_max_depth"),
    "cross product": (cross_product(5, 10), "schema_max_alternatives"),
    "bounds": (
        {"type": "object", "properties": {"n": {"type": "integer", "maximum": -(10**300)}}},
        "16 digits",
    ),
}


def test_schemas_built_to_stall_are_refused_while_the_proxy_stays_live(proxy: Proxy) -> None:
    answered: list[tuple[int, float]] = []  # liveliness: status, seconds
    done = threading.Event()

    def liveliness() -> None:
        with httpx.Client(timeout=60) as client:
            while not done.is_set():
                start = time.monotonic()
                answered.append((client.get(f"{proxy.url}/health/liveliness").status_code, 0.0))
                answered[-1] = (answered[-1][0], time.monotonic() - start)
                time.sleep(0.01)

    def ask(parameters: object) -> Any:
        tool = {"type": "function", "function": {"name": "probe", "parameters": parameters}}
        try:
            return proxy.client(max_retries=0).chat.completions.create(
                model="smart",
                messages=[{"role": "user", "content": TASK}],
                tools=[tool],
                tool_choice="required",
                max_tokens=48,
                **GREEDY,
            )
        except BadRequestError as error:
            return error

    poller = threading.Thread(target=liveliness)
    poller.start()
    cases = [*(schema for schema, _ in STALLING.values()), nested_optional(30)]  # the last is accepted
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(ask, cases))
    done.set()
    poller.join()
    for (_, limit), result in zip(STALLING.values(), results, strict=False):
        assert isinstance(result, BadRequestError) and limit in str(result), result
    accepted = results[-1]
    assert not isinstance(accepted, BadRequestError)
    assert accepted.choices[0].message.tool_calls[0].function.name == "probe"
    assert answered and all(status == 200 for status, _ in answered)
    print(f"liveliness: {len(answered)} answers, longest {max(s for _, s in answered) * 1000:.0f} ms")
