"""Exact prompt-token counts from the server's own tokenizer.

The count is of what a chat request really sends: the same reshaped messages and tool instructions,
rendered by the server (POST /apply-template) and tokenized by it (POST /tokenize, parse_special). So it
equals the `usage.prompt_tokens` the server reports for that request.

Caching, so a long agent history is not re-tokenized every turn:
- a whole request seen before costs no HTTP at all;
- otherwise the rendered prompt is cut just before each special token (`<|im_start|>`, `</s>`, ...).
  llama.cpp tokenizes the text between special tokens independently, so counts add up across such
  cuts; the longest already-counted run of segments is reused and only the new tail is tokenized.
  Each server's first few segmented counts are checked against a whole-prompt count, and segmenting
  is switched off for a server where they differ.

The flow is written once as a generator of HTTP requests (sans-IO) and driven by a sync or an async loop.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import marshal
import threading
from collections import OrderedDict
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from litellm.exceptions import NotFoundError

from .client import ServerClient
from .probe import ServerInfo, _remember, cached_info, chosen_template, info_from_props
from .settings import LlamafileSettings
from .transformation import build_chat_request

logger = logging.getLogger("litellm_llamafile")

# Special-token spellings worth cutting at; each is checked against the server's vocabulary first.
CANDIDATE_SEPARATORS = ("<|im_start|>", "<|start_header_id|>", "<|eot_id|>", "</s>", "[INST]")
VERIFY_FIRST = 3
CACHE_ENTRIES = 16384

HttpCall = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body
Flow = Generator[HttpCall, dict[str, Any], int]


@dataclass
class _ServerTokenState:
    separators: tuple[str, ...] | None = None  # None: not learned yet
    verified: int = 0
    segmenting: bool = True


class _LRU:
    def __init__(self, size: int) -> None:
        self._data: OrderedDict[bytes, int] = OrderedDict()
        self._size = size

    def get(self, key: bytes) -> int | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: bytes, value: int) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


_lock = threading.Lock()
_requests = _LRU(CACHE_ENTRIES)  # whole request -> count
_prefixes = _LRU(CACHE_ENTRIES)  # rolling hash of the first k segments -> their count
_servers: dict[str, _ServerTokenState] = {}


def clear_cache() -> None:
    with _lock:
        _requests.clear()
        _prefixes.clear()
        _servers.clear()


def token_list_length(answer: Mapping[str, Any]) -> int:
    """`/tokenize` answers `{"tokens": [ids]}`, `[{"id", "piece"}]` or `[piece strings]`: all count alike."""
    tokens = answer.get("tokens")
    if not isinstance(tokens, list):
        raise ValueError(f"/tokenize answered without a token list: {str(answer)[:200]}")
    return len(tokens)


def split_segments(prompt: str, separators: Sequence[str]) -> list[str]:
    """Cut `prompt` just before every occurrence of a separator; the pieces join back to `prompt`."""
    if not separators:
        return [prompt]
    cuts: list[int] = []
    for separator in separators:
        start = prompt.find(separator, 1)
        while start > 0:
            cuts.append(start)
            start = prompt.find(separator, start + len(separator))
    cuts = sorted(set(cuts))
    bounds = [0, *cuts, len(prompt)]
    return [prompt[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _prefix_keys(api_base: str, segments: Sequence[str]) -> list[bytes]:
    keys: list[bytes] = []
    running = hashlib.blake2b(api_base.encode(), digest_size=20).digest()
    for segment in segments:
        running = hashlib.blake2b(running + segment.encode(), digest_size=20).digest()
        keys.append(running)
    return keys


def _tokenize_call(text: str) -> HttpCall:
    return ("POST", "/tokenize", {"content": text, "add_special": False, "parse_special": True})


def _learn_separators(info: ServerInfo) -> Generator[HttpCall, dict[str, Any], tuple[str, ...]]:
    """Keep the candidates that are single special tokens in this server's vocabulary."""
    candidates = dict.fromkeys([*(t for t in (info.bos_token, info.eos_token) if t), *CANDIDATE_SEPARATORS])
    found: list[str] = []
    for candidate in candidates:
        special = yield _tokenize_call(candidate)
        if token_list_length(special) != 1:
            continue
        plain = yield (
            "POST",
            "/tokenize",
            {"content": candidate, "add_special": False, "parse_special": False},
        )
        if token_list_length(plain) > 1:
            found.append(candidate)
    return tuple(found)


def count_flow(
    settings: LlamafileSettings,
    messages: Sequence[object],
    params: Mapping[str, Any],
    model: str,
) -> Flow:
    """The whole counting protocol, as a generator of HTTP calls (see module doc)."""
    api_base = settings.api_base
    info = cached_info(api_base)
    if info is None and settings.template.value == "auto":
        try:
            props = yield ("GET", "/props", None)
            info = _remember(api_base, info_from_props(props))
        except NotFoundError:  # an older llamafile without /props
            info = _remember(api_base, ServerInfo())
    template = chosen_template(settings, info)
    raw_key = _raw_key(api_base, template.value, messages, params)
    if raw_key is not None:
        with _lock:
            known = _requests.get(raw_key)
        if known is not None:
            return known  # the exact same input as before: no transform, no HTTP
    request = build_chat_request(model, messages, params, template)
    request_key = hashlib.blake2b(
        json.dumps([api_base, template.value, request.messages], sort_keys=True).encode(), digest_size=20
    ).digest()
    with _lock:
        known = _requests.get(request_key)
    if known is not None:
        if raw_key is not None:
            with _lock:
                _requests.put(raw_key, known)
        return known

    rendered = yield ("POST", "/apply-template", {"messages": request.messages})
    prompt = rendered.get("prompt")
    if not isinstance(prompt, str):
        raise ValueError(f"/apply-template answered without a prompt: {str(rendered)[:200]}")

    with _lock:
        state = _servers.setdefault(api_base, _ServerTokenState())
    if state.separators is None:
        state.separators = yield from _learn_separators(info or ServerInfo())
    total = yield from _count_prompt(api_base, prompt, state)
    with _lock:
        _requests.put(request_key, total)
        if raw_key is not None:
            _requests.put(raw_key, total)
    return total


def _raw_key(
    api_base: str, template: str, messages: Sequence[object], params: Mapping[str, Any]
) -> bytes | None:
    """A cache key of the caller's input as given (marshal: fast, exact for plain JSON-like data);
    None for inputs marshal cannot encode (e.g. pydantic message objects), which take the slower key."""
    try:
        raw = marshal.dumps((api_base, template, list(messages), dict(params)))
    except ValueError:
        return None
    return b"raw:" + hashlib.blake2b(raw, digest_size=20).digest()


def _count_prompt(api_base: str, prompt: str, state: _ServerTokenState) -> Flow:
    segments = split_segments(prompt, state.separators or ()) if state.segmenting else [prompt]
    keys = _prefix_keys(api_base, segments)
    reuse, reused_count = 0, 0
    with _lock:
        for k in range(len(segments) - 1, 0, -1):
            hit = _prefixes.get(keys[k - 1])
            if hit is not None:
                reuse, reused_count = k, hit
                break
    # Tokenize the new tail as two pieces: all but its last segment, then the last one (usually the
    # generation prompt), so next turn's prompt, which extends this one minus that tail, finds a hit.
    total = reused_count
    if len(segments) - reuse >= 2:
        body = "".join(segments[reuse:-1])
        total += token_list_length((yield _tokenize_call(body)))
        with _lock:
            _prefixes.put(keys[-2], total)
        total += token_list_length((yield _tokenize_call(segments[-1])))
    else:
        total += token_list_length((yield _tokenize_call("".join(segments[reuse:]))))
    with _lock:
        _prefixes.put(keys[-1], total)

    if len(segments) > 1 and state.verified < VERIFY_FIRST:
        whole = token_list_length((yield _tokenize_call(prompt)))
        if whole != total:
            logger.warning(
                "llamafile server %s: segmented count %d != whole-prompt count %d; counting whole prompts",
                api_base,
                total,
                whole,
            )
            state.segmenting = False
            with _lock:
                _prefixes.clear()
            return whole
        state.verified += 1
    return total


def run_sync(flow: Flow, client: ServerClient) -> int:
    """Drive a flow with blocking HTTP. A 404 is thrown into the flow, which may handle it."""
    try:
        call = next(flow)
    except StopIteration as done:  # answered from the cache
        return int(done.value)
    while True:
        try:
            try:
                answer = client.request_json(*call)
            except NotFoundError as missing:
                call = flow.throw(missing)
            else:
                call = flow.send(answer)
        except StopIteration as done:
            return int(done.value)


async def run_async(flow: Flow, client: ServerClient) -> int:
    """Drive a flow with async HTTP (same protocol as run_sync)."""
    try:
        call = next(flow)
    except StopIteration as done:
        return int(done.value)
    while True:
        try:
            try:
                answer = await client.arequest_json(*call)
            except NotFoundError as missing:
                call = flow.throw(missing)
            else:
                call = flow.send(answer)
        except StopIteration as done:
            return int(done.value)


# -- public API ---------------------------------------------------------------------------------------


def _call_setup(
    model: str,
    tools: Sequence[Mapping[str, Any]] | None,
    tool_choice: object,
    api_base: str | None,
    api_key: str | None,
    options: Mapping[str, Any] | None,
    timeout: float | None,
) -> tuple[ServerClient, dict[str, Any], str]:
    settings = LlamafileSettings.resolve(api_base=api_base, api_key=api_key, timeout=timeout, options=options)
    bare_model = model.removeprefix("llamafile/")
    params: dict[str, Any] = {}
    if tools:
        params["tools"] = list(tools)
        if tool_choice is not None:
            params["tool_choice"] = tool_choice
    return ServerClient(settings, bare_model), params, bare_model


def count_tokens(
    messages: Sequence[object],
    *,
    model: str = "llamafile",
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: object = None,
    api_base: str | None = None,
    api_key: str | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> int:
    """Prompt tokens the server will count for this chat request (messages, tools, tool_choice).

    Connection settings resolve like a completion call: arguments, then LLAMAFILE_API_BASE /
    LLAMAFILE_API_KEY, then http://127.0.0.1:8080. Raises LiteLLM exceptions on HTTP failures.
    """
    client, params, bare_model = _call_setup(model, tools, tool_choice, api_base, api_key, options, timeout)
    return run_sync(count_flow(client.settings, messages, params, bare_model), client)


async def acount_tokens(
    messages: Sequence[object],
    *,
    model: str = "llamafile",
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: object = None,
    api_base: str | None = None,
    api_key: str | None = None,
    options: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> int:
    """Async `count_tokens`."""
    client, params, bare_model = _call_setup(model, tools, tool_choice, api_base, api_key, options, timeout)
    return await run_async(count_flow(client.settings, messages, params, bare_model), client)


def count_text_tokens(
    text: str, *, model: str = "llamafile", api_base: str | None = None, api_key: str | None = None
) -> int:
    """Tokens of raw text (no chat template, special-token spellings treated as text)."""
    client, _, _ = _call_setup(model, None, None, api_base, api_key, None, None)
    answer = client.request_json(
        "POST", "/tokenize", {"content": text, "add_special": False, "parse_special": False}
    )
    return token_list_length(answer)
