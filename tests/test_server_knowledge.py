"""What the adapter learns about a server follows the model it serves: a URL that starts serving another
model (a llamafile restarted with another GGUF, llama-swap) is learned again with none of the old counts,
a router (several models behind one URL) keeps what it learns per model, and counts include the tokens
a tokenizer adds to a prompt (BOS, EOS) the way the server adds them. Flows driven by hand, no network;
the live checks are in test_model_changes.py and test_real_models.py."""

from __future__ import annotations

from typing import Any

import httpx
import litellm
import pytest

from litellm_llamafile.core.settings import LlamafileSettings
from litellm_llamafile.flows.counting import count_flow
from litellm_llamafile.prompt.conversation import Conversation
from litellm_llamafile.server.servers import ServerRegistry

from .support.calls import MODES, call
from .support.flows import drive
from .support.scripted import event_stream, serving

QWEN = {
    "model_path": "/m/qwen.gguf",
    "model_alias": "qwen.gguf",
    "chat_template": "{{ messages }}<tool_call>",
}
GEMMA = {"model_path": "/m/gemma.gguf", "model_alias": "gemma.gguf", "chat_template": "{{ bos_token }}x"}


def props_answer(props: dict[str, Any]) -> Any:
    def request(method: str, path: str, body: Any) -> Any:
        assert (method, path) == ("GET", "/props")
        return props

    return request


def no_http(method: str, path: str, body: Any) -> Any:
    raise AssertionError(f"no request expected, got {method} {path}")


def test_known_facts_cost_no_request_until_the_server_may_have_changed() -> None:
    server = ServerRegistry().get("http://h:1")
    first = drive(server.knowledge_flow(), props_answer(QWEN))
    assert drive(server.knowledge_flow(), no_http) is first
    server.pools.lost()  # a connection to it failed: it may be another server now
    assert drive(server.knowledge_flow(), props_answer(QWEN)) is first  # the same model: kept


def test_another_model_behind_the_url_is_learned_again_without_the_old_counts() -> None:
    server = ServerRegistry().get("http://h:1")
    qwen = drive(server.knowledge_flow(), props_answer(QWEN))
    qwen.tokens.remember([b"request"], 41)
    server.pools.lost()
    gemma = drive(server.knowledge_flow(), props_answer(GEMMA))
    assert gemma is not qwen and gemma.info.model_path == "/m/gemma.gguf"
    assert gemma.tokens.request(b"request") is None
    assert server.info is gemma.info


def test_the_same_model_with_another_template_is_another_identity() -> None:
    server = ServerRegistry().get("http://h:1")
    plain = drive(server.knowledge_flow(), props_answer(GEMMA))
    server.pools.lost()
    templated = drive(server.knowledge_flow(), props_answer({**GEMMA, "chat_template": "[INST]"}))
    assert templated is not plain


def test_a_reply_naming_another_model_forgets_what_was_learned() -> None:
    server = ServerRegistry().get("http://h:1")
    drive(server.knowledge_flow("x"), props_answer(QWEN))
    server.saw_reply("x", "qwen.gguf")  # the model learned
    server.saw_reply("x", "x")  # the request's own name, echoed by some servers: no evidence
    assert server.knowledge("x") is not None
    server.saw_reply("x", "gemma.gguf")
    assert server.knowledge("x") is None
    assert drive(server.knowledge_flow("x"), props_answer(GEMMA)).info.model_alias == "gemma.gguf"


def test_a_server_whose_replies_give_a_fixed_name_is_learned_again_once() -> None:
    """Some servers name every reply alike (neither the alias nor the request's model): one re-learn
    shows that name is the model's own, and later replies cost no /props each."""
    server = ServerRegistry().get("http://h:1")
    first = drive(server.knowledge_flow("x"), props_answer(QWEN))
    server.saw_reply("x", "LLaMA_CPP")
    assert server.knowledge("x") is None  # evidence of another model, until /props says otherwise
    again = drive(server.knowledge_flow("x"), props_answer(QWEN))
    assert again is not first
    for _ in range(3):
        server.saw_reply("x", "LLaMA_CPP")
        assert server.knowledge("x") is again
    server.saw_reply("x", "gemma.gguf")  # another name still is evidence
    assert server.knowledge("x") is None


@pytest.mark.parametrize("mode", MODES)
def test_a_reply_from_another_model_makes_the_next_request_learn_again(mode: str) -> None:
    """A URL that starts serving another model (llama-swap, or a restart on a kept-alive connection) says
    so in its reply's `model`, streamed or not: the next request reads /props again, and no more after."""
    props = [QWEN, GEMMA]
    reads: list[str] = []
    answering = ["qwen.gguf"]

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/props":
            reads.append(request.url.path)
            return httpx.Response(200, json=props[min(len(reads), 2) - 1])
        if b'"stream":true' in request.content.replace(b" ", b""):
            delta = {"model": answering[0], "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
            end = {"model": answering[0], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            return event_stream([delta, end])
        reply = {"role": "assistant", "content": "Hi"}
        return httpx.Response(
            200,
            json={
                "model": answering[0],
                "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}],
            },
        )

    with serving(server) as url:
        for name in ("qwen.gguf", "gemma.gguf", "gemma.gguf", "gemma.gguf"):
            answering[0] = name
            call(mode, model="llamafile/x", api_base=url)
    assert len(reads) == 2  # the first request, and the one after gemma.gguf first answered


def test_a_router_keeps_what_it_learns_per_model() -> None:
    server = ServerRegistry().get("http://h:1")
    router = {"role": "router", "model_alias": "llama-server", "model_path": "none"}
    by_path = {"/props": router, "/props?model=qwen": QWEN, "/props?model=gemma": GEMMA}

    def request(method: str, path: str, body: Any) -> Any:
        return by_path[path]

    qwen = drive(server.knowledge_flow("qwen"), request)
    gemma = drive(server.knowledge_flow("gemma"), request)
    assert qwen.info.model_path == "/m/qwen.gguf" and gemma.info.model_path == "/m/gemma.gguf"
    assert server.knowledge("qwen") is qwen and server.knowledge("gemma") is gemma
    assert server.route("qwen") == "qwen"


@pytest.mark.parametrize("role", ["router", "model"])
def test_a_router_gets_each_request_on_its_own_connection(role: str) -> None:
    """A router drops kept-alive connections as it swaps models, and a POST it may have received is never
    sent twice: so every request to a router says `Connection: close` (one model's server keeps them)."""
    props = (
        {"role": "router", "model_alias": "llama-server", "model_path": "none"} if role == "router" else QWEN
    )
    closing: dict[str, str | None] = {}

    def server(request: httpx.Request) -> httpx.Response:
        closing[request.url.path] = request.headers.get("connection")
        if request.url.path == "/props":
            return httpx.Response(200, json=props if "model" not in request.url.params else QWEN)
        reply = {"role": "assistant", "content": "Hi"}
        return httpx.Response(
            200, json={"choices": [{"index": 0, "message": reply, "finish_reason": "stop"}]}
        )

    with serving(server) as url:
        litellm.completion(model="llamafile/qwen", api_base=url, messages=[{"role": "user", "content": "Hi"}])
    assert (closing["/v1/chat/completions"] == "close") is (role == "router")


class Tokenizer:
    """A stand-in tokenizer: one token per space-separated word, `<s>` a special token, and a BOS added
    in front of a prompt tokenized with add_special (as Gemma's and Llama's tokenizers do)."""

    def __init__(self, props: dict[str, Any]) -> None:
        self.props = props
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, method: str, path: str, body: Any) -> Any:
        self.bodies.append((path, body))
        if path.startswith("/props"):
            return self.props
        if path == "/apply-template":
            return {"prompt": " ".join(f"<s> {m['role']} {m['content']}" for m in body["messages"])}
        special = body["parse_special"]
        words = body["content"].replace("<s>", " <s> " if special else " < s > ").split()
        return {"tokens": [0] * (len(words) + (1 if body["add_special"] else 0))}


@pytest.mark.parametrize("turns", [1, 2, 5, 9])
def test_counts_include_the_bos_the_tokenizer_adds_however_the_prompt_is_cut(turns: int) -> None:
    props = {"chat_template": "<s>{{ messages }}", "bos_token": "<s>", "eos_token": "</s>"}
    tokenizer = Tokenizer(props)
    server = ServerRegistry().get("http://h:1")
    settings = LlamafileSettings.resolve(api_base="http://h:1", options={"template": "chatml"})
    history: list[dict[str, Any]] = []
    for turn in range(turns):
        history += [{"role": "user", "content": f"question {turn} about bronze"}]
        counted = drive(count_flow(server, settings, Conversation.of(history), {}, "m"), tokenizer)
        rendered = tokenizer("POST", "/apply-template", {"messages": history})["prompt"]
        whole = tokenizer(
            "POST", "/tokenize", {"content": rendered, "add_special": True, "parse_special": True}
        )
        assert counted == len(whole["tokens"])
        history += [{"role": "assistant", "content": f"answer {turn}"}]


def test_a_routers_token_counts_name_the_model() -> None:
    tokenizer = Tokenizer({"role": "router"})
    server = ServerRegistry().get("http://h:1")
    server._router = True  # learned from its /props
    settings = LlamafileSettings.resolve(api_base="http://h:1")
    hi = Conversation.of([{"role": "user", "content": "hi"}])
    drive(count_flow(server, settings, hi, {}, "gemma"), tokenizer)
    posted = [body for path, body in tokenizer.bodies if path in ("/apply-template", "/tokenize")]
    assert posted and all(body["model"] == "gemma" for body in posted)
    assert next(path for path, _ in tokenizer.bodies) == "/props?model=gemma"
