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
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from . import errors
from .families import NO_EXPECTATION
from .lru import LRU
from .probe import ServerInfo, chosen_template, native_tools
from .protocol import Endpoint, Flow, HttpCall
from .roles import image_count, text_of
from .settings import LlamafileSettings, TemplateName, call_settings
from .transformation import build_chat_request, template_body

if TYPE_CHECKING:
    from .servers import Server

logger = logging.getLogger("litellm_llamafile")

# Special-token spellings worth cutting at; each is checked against the server's vocabulary first.
CANDIDATE_SEPARATORS = ("<|im_start|>", "<|start_header_id|>", "<|eot_id|>", "</s>", "[INST]")
VERIFY_FIRST = 3
CACHE_ENTRIES = 8192  # per server
# What one image is counted as: LLaVA-1.5's projector (llamafile's usual vision model) turns every image
# into 24x24 = 576 embeddings. Other projectors spend other amounts; the count is then an estimate.
IMAGE_TOKENS = 576


class TokenCache:
    """One server's counts: whole requests, prompt prefixes, and how its prompts may be segmented.
    Every read and write goes through the lock: async and threaded callers share a server."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._requests = LRU[int](size)  # whole request -> count
        self._prefixes = LRU[int](size)  # rolling hash of the first k segments -> their count
        self.separators: tuple[str, ...] | None = None  # None: not learned yet
        self._verified = 0
        self._segmenting = True

    def request(self, key: bytes | None) -> int | None:
        if key is None:
            return None
        with self._lock:
            return self._requests.get(key)

    def remember(self, keys: Sequence[bytes | None], count: int) -> None:
        with self._lock:
            for key in keys:
                if key is not None:
                    self._requests.put(key, count)

    def longest_prefix(self, keys: Sequence[bytes]) -> tuple[int, int]:
        """(segments, count) of the longest counted run of leading segments, leaving at least one out."""
        with self._lock:
            for k in range(len(keys) - 1, 0, -1):
                hit = self._prefixes.get(keys[k - 1])
                if hit is not None:
                    return k, hit
        return 0, 0

    def remember_prefix(self, key: bytes, count: int) -> None:
        with self._lock:
            self._prefixes.put(key, count)

    @property
    def segmenting(self) -> bool:
        with self._lock:
            return self._segmenting

    def needs_verification(self) -> bool:
        with self._lock:
            return self._segmenting and self._verified < VERIFY_FIRST

    def verified(self, ok: bool) -> None:
        """A segmented count checked against a whole-prompt count; a mismatch turns segmenting off."""
        with self._lock:
            if ok:
                self._verified += 1
            else:
                self._segmenting = False
                self._prefixes.clear()

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._prefixes.clear()
            self.separators = None
            self._verified = 0
            self._segmenting = True


def token_list_length(answer: Mapping[str, Any]) -> int:
    """`/tokenize` answers `{"tokens": [ids]}`, `[{"id", "piece"}]` or `[piece strings]`: all count alike."""
    tokens = answer.get("tokens")
    if not isinstance(tokens, list):
        raise errors.bad_body(Endpoint.TOKENIZE, "", 200, json.dumps(answer), None, "no token list")
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


def _tokenize_call(text: str, *, parse_special: bool = True) -> HttpCall:
    return HttpCall(
        "POST", Endpoint.TOKENIZE, {"content": text, "add_special": False, "parse_special": parse_special}
    )


def _learn_separators(info: ServerInfo) -> Generator[HttpCall, dict[str, Any], tuple[str, ...]]:
    """Keep the candidates that are single special tokens in this server's vocabulary."""
    candidates = dict.fromkeys([*(t for t in (info.bos_token, info.eos_token) if t), *CANDIDATE_SEPARATORS])
    found: list[str] = []
    for candidate in candidates:
        special = yield _tokenize_call(candidate)
        if token_list_length(special) != 1:
            continue
        plain = yield _tokenize_call(candidate, parse_special=False)
        if token_list_length(plain) > 1:
            found.append(candidate)
    return tuple(found)


def count_flow(
    server: Server,
    settings: LlamafileSettings,
    messages: Sequence[object],
    params: Mapping[str, Any],
    model: str,
) -> Flow[int]:
    """The whole counting protocol, as a flow of HTTP calls (see module doc)."""
    cache = server.tokens
    automatic = settings.template in (TemplateName.AUTO, TemplateName.LEARN)
    learn = settings.template is TemplateName.LEARN
    info = (yield from server.info_flow(learn=learn)) if automatic else server.info
    template = chosen_template(settings, info)
    native = native_tools(settings, info)
    # The same messages count differently when the template renders the tools itself.
    raw_key = _raw_key(server.api_base, template.value + ("+native" if native else ""), messages, params)
    known = cache.request(raw_key)
    if known is not None:
        return known  # the exact same input as before: no transform, no HTTP
    request = build_chat_request(
        model,
        messages,
        params,
        template,
        expect=info.reply if info else NO_EXPECTATION,
        native_tools=native,
        limits=settings.schema_limits,
        compiled=server.compiled,
    )
    body = template_body(request)
    request_key = hashlib.blake2b(
        json.dumps([template.value, body], sort_keys=True).encode(), digest_size=20
    ).digest()
    known = cache.request(request_key)
    if known is not None:
        cache.remember([raw_key], known)
        return known

    # The server's tokenizer cannot count an image (what one costs depends on the projector), so images
    # are left out of the rendered text and each counts IMAGE_TOKENS.
    images = sum(image_count(turn["content"]) for turn in request.messages)
    if images:
        body["messages"] = [{**t, "content": text_of(t["content"])} for t in request.messages]
    rendered = yield HttpCall("POST", Endpoint.APPLY_TEMPLATE, body)
    prompt = rendered.get("prompt")
    if not isinstance(prompt, str):
        raise errors.bad_body(Endpoint.APPLY_TEMPLATE, model, 200, json.dumps(rendered), None, "no prompt")
    if cache.separators is None:
        cache.separators = yield from _learn_separators(info or ServerInfo())
    total = (yield from _count_prompt(server.api_base, prompt, cache)) + images * IMAGE_TOKENS
    cache.remember([request_key, raw_key], total)
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


def _count_prompt(api_base: str, prompt: str, cache: TokenCache) -> Flow[int]:
    segments = split_segments(prompt, cache.separators or ()) if cache.segmenting else [prompt]
    keys = _prefix_keys(api_base, segments)
    reuse, total = cache.longest_prefix(keys)
    # Tokenize the new tail as two pieces: all but its last segment, then the last one (usually the
    # generation prompt), so next turn's prompt, which extends this one minus that tail, finds a hit.
    if len(segments) - reuse >= 2:
        total += token_list_length((yield _tokenize_call("".join(segments[reuse:-1]))))
        cache.remember_prefix(keys[-2], total)
        total += token_list_length((yield _tokenize_call(segments[-1])))
    else:
        total += token_list_length((yield _tokenize_call("".join(segments[reuse:]))))
    cache.remember_prefix(keys[-1], total)

    if len(segments) > 1 and cache.needs_verification():
        whole = token_list_length((yield _tokenize_call(prompt)))
        cache.verified(whole == total)
        if whole != total:
            logger.warning(
                "llamafile server %s: segmented count %d != whole-prompt count %d; counting whole prompts",
                api_base,
                total,
                whole,
            )
            return whole
    return total


# -- public API ---------------------------------------------------------------------------------------


class CountOptions(TypedDict, total=False):
    """What a count may be told besides the messages; connection settings resolve like a completion's."""

    model: str
    tools: Sequence[Mapping[str, Any]] | None
    tool_choice: object
    api_base: str | None
    api_key: str | None
    options: Mapping[str, Any] | None
    timeout: float | None


@dataclass(frozen=True, slots=True)
class _Count:
    server: Server
    settings: LlamafileSettings
    model: str
    params: dict[str, Any]

    @classmethod
    def of(cls, how: CountOptions) -> _Count:
        from .servers import server_for

        unknown = sorted(set(how) - CountOptions.__optional_keys__)
        if unknown:  # a typo'd or llamafile_-prefixed option would otherwise be dropped unseen
            raise TypeError(
                f"count_tokens() got unexpected options {unknown}; adapter options go in options="
            )
        settings = call_settings(
            api_base=how.get("api_base"),
            api_key=how.get("api_key"),
            timeout=how.get("timeout"),
            options=how.get("options"),
        )
        params: dict[str, Any] = {}
        if how.get("tools"):
            params["tools"] = list(how.get("tools") or ())
            if how.get("tool_choice") is not None:
                params["tool_choice"] = how.get("tool_choice")
        model = how.get("model", "llamafile").removeprefix("llamafile/")
        return cls(server_for(settings), settings, model, params)

    def flow(self, messages: Sequence[object]) -> Flow[int]:
        return count_flow(self.server, self.settings, messages, self.params, self.model)


def count_tokens(messages: Sequence[object], **how: Unpack[CountOptions]) -> int:
    """Prompt tokens the server will count for this chat request (messages, tools, tool_choice).

    Connection settings resolve like a completion call: `api_base=` / `api_key=`, then
    LLAMAFILE_API_BASE / LLAMAFILE_API_KEY, then http://127.0.0.1:8080. Raises LiteLLM exceptions on
    HTTP failures.
    """
    count = _Count.of(how)
    return count.server.driver(count.settings, count.model).run(count.flow(messages))


async def acount_tokens(messages: Sequence[object], **how: Unpack[CountOptions]) -> int:
    """Async `count_tokens`."""
    count = _Count.of(how)
    return await count.server.async_driver(count.settings, count.model).run(count.flow(messages))


def text_count_flow(text: str) -> Flow[int]:
    """Tokens of raw text (no chat template, special-token spellings treated as text)."""
    return token_list_length((yield _tokenize_call(text, parse_special=False)))


def count_text_tokens(
    text: str, *, model: str = "llamafile", api_base: str | None = None, api_key: str | None = None
) -> int:
    """Tokens of raw text (no chat template, special-token spellings treated as text)."""
    count = _Count.of({"model": model, "api_base": api_base, "api_key": api_key})
    return count.server.driver(count.settings, count.model).run(text_count_flow(text))
