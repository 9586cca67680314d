"""Exact prompt-token counts from the server's own tokenizer.

The count is of what a chat request really sends: the same reshaped messages and tool instructions,
rendered by the server (POST /apply-template) and tokenized by it (POST /tokenize, parse_special). So it
equals the `usage.prompt_tokens` the server reports for that request.

The tokens a tokenizer adds around a prompt are counted the way the server adds them, by the server
itself: llama-server tokenizes a chat prompt with `add_special` on, so the tokenizer adds BOS when its
model says so (Gemma, Llama: yes; Qwen, SmolLM2: no) and EOS when it says so, and the rendered prompt has
already lost a BOS the template wrote itself (`{{ bos_token }}`: llama-server strips it, since the
tokenizer adds one; a prompt that still starts with BOS then gets two, as on the server). So the start
of every prompt is tokenized with `add_special` on too, and the rest with it off: the counts add up to
the server's own, whatever the tokenizer adds (a BOS-adding tokenizer counted one short before).

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
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from ..core import errors
from ..core.settings import LlamafileSettings, TemplateName, call_settings, mask_userinfo
from ..prompt.conversation import Conversation
from ..prompt.roles import image_count, text_of
from ..server.probe import ServerInfo
from ..server.servers import Knowledge, Server, server_for
from ..server.token_cache import TokenCache
from ..wire.protocol import Endpoint, Flow, HttpCall
from .request import ChatRequest, build_chat_request, profile_for, template_body

logger = logging.getLogger("litellm_llamafile")

# Special-token spellings worth cutting at; each is checked against the server's vocabulary first.
CANDIDATE_SEPARATORS = ("<|im_start|>", "<|start_header_id|>", "<|eot_id|>", "</s>", "[INST]")
# What one image is counted as: LLaVA-1.5's projector (llamafile's usual vision model) turns every image
# into 24x24 = 576 embeddings. Other projectors spend other amounts; the count is then an estimate.
IMAGE_TOKENS = 576


def token_list_length(answer: Mapping[str, Any]) -> int:
    """`/tokenize` answers `{"tokens": [ids]}`, `[{"id", "piece"}]` or `[piece strings]`: all count alike."""
    tokens = answer.get("tokens")
    if not isinstance(tokens, list):
        raise errors.BadAnswer("JSON with no token list", answer)
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


def _tokenize_call(
    text: str, model: str | None = None, *, parse_special: bool = True, start: bool = False
) -> HttpCall:
    """`start`: the text begins the prompt, so the tokenizer adds what it adds to a whole prompt (BOS and
    EOS where its model says so), as the server does to the prompt of a request (see the module doc).
    `model`: the router's model that counts."""
    body: dict[str, Any] = {"content": text, "add_special": start, "parse_special": parse_special}
    if model:
        body["model"] = model
    return HttpCall("POST", Endpoint.TOKENIZE, body)


def _learn_separators(
    info: ServerInfo, model: str | None
) -> Generator[HttpCall, dict[str, Any], tuple[str, ...]]:
    """Keep the candidates that are single special tokens in this server's vocabulary."""
    candidates = dict.fromkeys([*(t for t in (info.bos_token, info.eos_token) if t), *CANDIDATE_SEPARATORS])
    found: list[str] = []
    for candidate in candidates:
        special = yield _tokenize_call(candidate, model)
        if token_list_length(special) != 1:
            continue
        plain = yield _tokenize_call(candidate, model, parse_special=False)
        if token_list_length(plain) > 1:
            found.append(candidate)
    return tuple(found)


def count_flow(
    server: Server,
    settings: LlamafileSettings,
    conversation: Conversation,
    params: Mapping[str, Any],
    model: str,
) -> Flow[int]:
    """The prompt tokens of the chat request these settings would send `server` for this conversation:
    the same profile, the same `build_chat_request`, so the count is of the prompt that is sent."""
    # The server's facts even when the role strategy is given: they decide more of the prompt than the
    # roles (a thinking template's switches), and sending reads them too.
    # The counts are those of the model the server serves now: its knowledge holds them.
    knowledge = yield from server.knowledge_flow(model, learn=settings.template is TemplateName.LEARN)
    profile = profile_for(server, settings, knowledge, model)
    # The same messages count differently when the template renders the tools itself.
    shape = repr((profile.strategy, profile.native_tools, profile.expect))
    raw_key = _raw_key(server.api_base, shape, conversation.messages, params)
    known = knowledge.tokens.request(raw_key)
    if known is not None:
        return known  # the exact same input as before: no transform, no HTTP
    request = build_chat_request(model, conversation, params, profile)
    total = yield from request_count_flow(server, knowledge, request, model)
    knowledge.tokens.remember([raw_key], total)
    return total


def request_count_flow(server: Server, knowledge: Knowledge, request: ChatRequest, model: str) -> Flow[int]:
    """The prompt tokens of `request`: rendered by the server (/apply-template) and tokenized there,
    segment by segment where the model's cache allows (see module doc)."""
    cache, info = knowledge.tokens, knowledge.info
    routed = model if request.routed else None  # a router's /tokenize names the model, as the body does
    body = template_body(request)
    request_key = hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=20).digest()
    known = cache.request(request_key)
    if known is not None:
        return known
    # The server's tokenizer cannot count an image (what one costs depends on the projector), so images
    # are left out of the rendered text and each counts IMAGE_TOKENS.
    images = sum(image_count(turn["content"]) for turn in request.messages)
    if images:
        body["messages"] = [{**t, "content": text_of(t["content"])} for t in request.messages]
    rendered = yield HttpCall("POST", Endpoint.APPLY_TEMPLATE, body)
    prompt = rendered.get("prompt")
    if not isinstance(prompt, str):
        raise errors.BadAnswer("JSON with no prompt", rendered)
    if cache.separators is None:
        cache.separators = yield from _learn_separators(info, routed)
    total = (yield from _count_prompt(server.api_base, prompt, cache, routed)) + images * IMAGE_TOKENS
    cache.remember([request_key], total)
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


def _count_prompt(api_base: str, prompt: str, cache: TokenCache, model: str | None) -> Flow[int]:
    segments = split_segments(prompt, cache.separators or ()) if cache.segmenting else [prompt]
    keys = _prefix_keys(api_base, segments)
    reuse, total = cache.longest_prefix(keys)
    # Tokenize the new tail as two pieces: all but its last segment, then the last one (usually the
    # generation prompt), so next turn's prompt, which extends this one minus that tail, finds a hit.
    # The piece that starts the prompt gets the tokens the tokenizer adds (see the module doc); a count
    # reused from the cache already has them.
    if len(segments) - reuse >= 2:
        head = "".join(segments[reuse:-1])
        total += token_list_length((yield _tokenize_call(head, model, start=reuse == 0)))
        cache.remember_prefix(keys[-2], total)
        total += token_list_length((yield _tokenize_call(segments[-1], model)))
    else:
        tail = "".join(segments[reuse:])
        total += token_list_length((yield _tokenize_call(tail, model, start=reuse == 0)))
    cache.remember_prefix(keys[-1], total)

    if len(segments) > 1 and cache.needs_verification():
        whole = token_list_length((yield _tokenize_call(prompt, model, start=True)))
        cache.verified(whole == total)
        if whole != total:
            logger.warning(
                "llamafile server %s: segmented count %d != whole-prompt count %d; counting whole prompts",
                mask_userinfo(api_base),
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
        return count_flow(self.server, self.settings, Conversation.of(messages), self.params, self.model)


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
