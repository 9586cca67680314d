"""How `llamafile/` reaches this adapter instead of LiteLLM's built-in passthrough: the one module that
touches LiteLLM's internals.

LiteLLM resolves `llamafile/x` to its own OpenAI-compatible `llamafile` provider before it ever looks at
`custom_provider_map`, so a custom handler of that name is silently bypassed. `install()` changes exactly
the LiteLLM tables listed in `PATCHES`, each with the LiteLLM symbols it depends on. It checks every one
of those symbols before it changes anything, and raises `UnsupportedLiteLLMError` (naming the LiteLLM
version and the missing symbol) when one is gone: `llamafile/` never falls back to the built-in silently.
`uninstall()` puts back exactly what was there. Where LiteLLM releases differ, `LITELLM_DIFFERENCES` says
how the routing copes, in one place.

The only mutable state is `_ROUTING`: the saved originals, the handler, and the token counter's
per-model servers.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import litellm

from ..core.errors import PROVIDER, invalid_request
from ..core.settings import normalize_api_base
from ..flows.counting import acount_tokens, count_text_tokens, count_tokens
from .model_info import CAPABILITIES, model_info, model_key
from .provider import LlamafileProvider

if TYPE_CHECKING:
    from litellm.llms.base_llm.base_utils import BaseTokenCounter
    from litellm.llms.llamafile.chat.transformation import LlamafileChatConfig
    from litellm.types.utils import ProviderSpecificModelInfo, TokenCountResponse

# A floor and no upper bound: the replay tier passes on the floor and on the newest release, which CI checks
# each run (scripts/test-litellm-range). pyproject.toml pins the same range for the package and its proxy
# extra (tests/test_litellm_patches.py keeps them in step). A later release whose internals moved fails at
# register() with UnsupportedLiteLLMError, naming its version and what to do.
SUPPORTED_LITELLM = ">=1.101"


# -- what the routing depends on ---------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """One change install() makes to LiteLLM, and the LiteLLM symbols it relies on.

    A symbol is `module:attribute.path`, optionally with `(param, ...)`: parameters it must accept."""

    change: str
    symbols: tuple[str, ...]


_LLAMAFILE_CHAT_CONFIG = "litellm.llms.llamafile.chat.transformation:LlamafileChatConfig"
EMBEDDINGS_PROVIDER = "llamafile_adapter"  # the handler's second provider name, for embeddings only
_EMBEDDING_FUNCTIONS = ("embedding", "aembedding")
_BASE_TOKEN_COUNTER = "litellm.llms.base_llm.base_utils:BaseTokenCounter"

PATCHES: tuple[Patch, ...] = (
    Patch(
        "custom_provider_map gets the adapter's handler for `llamafile`, and _custom_providers lists it, "
        "so completion()/acompletion() dispatch to the custom-handler branch",
        ("litellm:custom_provider_map", "litellm:_custom_providers"),
    ),
    Patch(
        "openai_compatible_providers loses `llamafile`, so the OpenAI passthrough branch no longer matches",
        ("litellm:openai_compatible_providers",),
    ),
    Patch(
        "litellm.LlamafileChatConfig becomes AdapterChatConfig: provider resolution no longer invents "
        "`fake-api-key` and a default api_base (our settings resolve both)",
        (
            "litellm:LlamafileChatConfig",
            _LLAMAFILE_CHAT_CONFIG,
        ),
    ),
    Patch(
        "ProviderConfigManager.get_provider_model_info answers AdapterChatConfig for `llamafile`: "
        "capability data and $0 model info for every llamafile/ name, and the proxy's exact token counter",
        (
            "litellm.utils:ProviderConfigManager.get_provider_model_info(model, provider)",
            "litellm.types.utils:LlmProviders.LLAMAFILE",
            _BASE_TOKEN_COUNTER,
            "litellm.types.utils:TokenCountResponse",
            "litellm:model_cost",
            "litellm:register_model",
        ),
    ),
    Patch(
        "openai_text_completion_compatible_providers loses `llamafile`, so text_completion() reaches the "
        "handler (which sends the raw prompt to /v1/completions) instead of an OpenAI client with no key",
        ("litellm:openai_text_completion_compatible_providers",),
    ),
    Patch(
        "litellm.embedding / aembedding send llamafile/ models to the handler: embedding() dispatches "
        "`llamafile` to its OpenAI-like branch before it looks at custom providers, so the wrapper renames "
        f"the provider to the adapter's second name `{EMBEDDINGS_PROVIDER}` and calls LiteLLM's own function",
        ("litellm:embedding", "litellm:aembedding", "litellm:provider_list"),
    ),
    Patch(
        "litellm.token_counter and litellm.utils.token_counter count llamafile/ models exactly on the "
        "server; every other model goes to LiteLLM's own function",
        (
            "litellm:token_counter",
            "litellm.utils:token_counter(model, custom_tokenizer, text, messages, count_response_tokens, "
            "tools, tool_choice)",
        ),
    ),
)


@dataclass(frozen=True)
class Difference:
    """A way LiteLLM releases differ that the routing must handle, and how it does."""

    since: tuple[int, int]
    change: str
    handling: str


LITELLM_DIFFERENCES: Mapping[str, Difference] = {
    "public_provider_info": Difference(
        since=(1, 108),
        change="provider resolution calls LlamafileChatConfig().get_openai_compatible_provider_info; "
        "earlier releases call the private _get_openai_compatible_provider_info",
        handling="AdapterChatConfig overrides both names",
    ),
}
# Below the floor, for whoever lowers it: before 1.89 get_model_info never asks the provider config
# (AdapterChatConfig.get_model_info), so an unregistered llamafile/ name has no model info and its cost
# lookup fails; 1.83-1.100 print the api_key in LiteLLM's debug log and re-enter a Router fallback for a
# stream that broke mid-reply (tests/test_faults.py catches both); 1.80.17-1.81 load tiktoken from the
# network on every custom-handler call.


class UnsupportedLiteLLMError(RuntimeError):
    """The installed LiteLLM lacks something the routing relies on; nothing was changed."""


def litellm_version() -> str:
    try:
        return importlib.metadata.version("litellm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_MISSING = object()


def find_symbol(spec: str) -> Any:
    """The object `module:attr.path(params)` names, or `_MISSING` when it (or a parameter) is gone."""
    target, _, params = spec.partition("(")
    module_name, _, attributes = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError:
        return _MISSING
    for name in attributes.split("."):
        found = getattr(found, name, _MISSING)
        if found is _MISSING:
            return _MISSING
    wanted = [p.strip() for p in params.rstrip(")").split(",") if p.strip()]
    if wanted:
        try:
            accepted = inspect.signature(found).parameters
        except (TypeError, ValueError):
            return _MISSING
        if any(p not in accepted for p in wanted):
            return _MISSING
    return found


def missing_symbols() -> list[tuple[str, Patch]]:
    return [(spec, patch) for patch in PATCHES for spec in patch.symbols if find_symbol(spec) is _MISSING]


def verify_litellm() -> None:
    """Raise UnsupportedLiteLLMError unless every symbol in PATCHES is present."""
    missing = missing_symbols()
    if not missing:
        return
    spec, patch = missing[0]
    others = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise UnsupportedLiteLLMError(
        f"litellm-llamafile cannot route llamafile/ on LiteLLM {litellm_version()}: {spec} is missing"
        f"{others}, needed because {patch.change}. Nothing was changed. What to do: install an earlier "
        f'LiteLLM (`pip install "litellm{SUPPORTED_LITELLM},<{litellm_version()}"`) or a litellm-llamafile '
        f"release that supports this one, and tell us which release broke it. (In a checkout, "
        f"`scripts/test-litellm-range {litellm_version()}` runs the replay tier on it.)"
    )


# Resolved guardedly, so that importing this module never fails on a LiteLLM that lacks them: install()
# verifies PATCHES before anything built on a placeholder could reach LiteLLM.
if not TYPE_CHECKING:
    BaseTokenCounter = find_symbol(_BASE_TOKEN_COUNTER)
    LlamafileChatConfig = find_symbol(_LLAMAFILE_CHAT_CONFIG)
    if BaseTokenCounter is _MISSING:
        BaseTokenCounter = type("BaseTokenCounter", (), {})
    if LlamafileChatConfig is _MISSING:
        LlamafileChatConfig = type("LlamafileChatConfig", (), {})


# -- the proxy's token counter and the chat config ----------------------------------------------------


def is_adapter_model(model: object) -> bool:
    return isinstance(model, str) and model.startswith(f"{PROVIDER}/")


class LlamafileTokenCounter(BaseTokenCounter):
    """The proxy's `/utils/token_counter` hook: exact counts from the deployment's own server."""

    def should_use_token_counting_api(self, custom_llm_provider: str | None = None) -> bool:
        return custom_llm_provider == PROVIDER

    async def count_tokens(  # type: ignore[override]
        self,
        model_to_use: str,
        messages: list[dict[str, Any]] | None,
        contents: list[dict[str, object]] | None,
        deployment: dict[str, object] | None = None,
        request_model: str = "",
        tools: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> TokenCountResponse | None:
        from litellm.types.utils import TokenCountResponse

        params = (deployment or {}).get("litellm_params")
        litellm_params: Mapping[str, Any] = params if isinstance(params, Mapping) else {}
        options = {k: v for k, v in litellm_params.items() if k.startswith("llamafile_")}
        try:
            total = await acount_tokens(
                messages or [],
                model=model_to_use,
                tools=tools,
                api_base=litellm_params.get("api_base") or api_base_for(model_to_use),
                api_key=litellm_params.get("api_key"),
                options=options,
            )
        except Exception as error:  # the endpoint answers with the error instead of failing the request
            return TokenCountResponse(
                total_tokens=0,
                request_model=request_model,
                model_used=model_to_use,
                tokenizer_type="llamafile",
                error=True,
                error_message=str(error),
                status_code=getattr(error, "status_code", 500),
            )
        return TokenCountResponse(
            total_tokens=total,
            request_model=request_model,
            model_used=model_to_use,
            tokenizer_type="llamafile /tokenize",
            count_source="provider",
        )


class AdapterChatConfig(LlamafileChatConfig):
    """LiteLLM's llamafile config minus the invented key and default base, plus the adapter's capability
    data, $0 model info for any name, and an exact token counter."""

    def get_openai_compatible_provider_info(
        self, api_base: str | None, api_key: str | None
    ) -> tuple[str | None, str | None]:
        return api_base, api_key

    # LITELLM_DIFFERENCES["public_provider_info"]: releases before 1.108 call the private name.
    _get_openai_compatible_provider_info = get_openai_compatible_provider_info

    def get_provider_info(self, model: str) -> ProviderSpecificModelInfo | None:
        return cast("ProviderSpecificModelInfo", dict(CAPABILITIES))

    def get_supported_openai_params(self, model: str) -> list[str]:
        # reasoning_effort reaches the templates that read it (gpt-oss, Solar Open: transformation.py).
        return [*super().get_supported_openai_params(model), "reasoning_effort"]

    def get_model_info(
        self, model: str, api_base: str | None = None, api_key: str | None = None
    ) -> dict[str, Any]:
        return model_info(model)

    def get_token_counter(self) -> BaseTokenCounter:
        return LlamafileTokenCounter()


_ADAPTER_CONFIG = AdapterChatConfig()


# -- the wrappers -------------------------------------------------------------------------------------


def _wrapped_model_info(original: Callable[..., Any]) -> Callable[..., Any]:
    from litellm.types.utils import LlmProviders

    @functools.wraps(original)
    def get_provider_model_info(model: str | None, provider: Any, *args: Any, **kwargs: Any) -> Any:
        if provider == LlmProviders.LLAMAFILE:
            return _ADAPTER_CONFIG
        return original(model, provider, *args, **kwargs)

    get_provider_model_info.__llamafile_adapter__ = True  # type: ignore[attr-defined]
    return get_provider_model_info


def _text_of(text: object, model: str) -> str:
    if isinstance(text, str):
        return text
    if isinstance(text, list) and all(isinstance(piece, str) for piece in text):
        return "".join(text)
    raise invalid_request(
        "token_counter(text=...) takes a string or a list of strings, got "
        f"{type(text).__name__}{' of ' + type(text[0]).__name__ if isinstance(text, list) and text else ''}. "
        "Positional arguments follow LiteLLM's order (model, custom_tokenizer, text, messages, ...): "
        "pass messages=... by keyword.",
        model,
    )


def _wrapped_token_counter(original: Callable[..., int]) -> Callable[..., int]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def token_counter(
        *args: Any, api_base: str | None = None, api_key: str | None = None, **kwargs: Any
    ) -> int:
        """LiteLLM's token_counter; for llamafile/ models the server's exact count, from the server that
        api_base= names, else the one register(api_bases=...) gives the model, else LLAMAFILE_API_BASE."""
        try:
            call = signature.bind(*args, **kwargs).arguments  # positional or keyword, as LiteLLM names them
        except TypeError:
            call = {}
        model = call.get("model", "")
        if not is_adapter_model(model) or call.get("custom_tokenizer") is not None:
            if api_base is not None or api_key is not None:  # LiteLLM's own answer to these keywords
                kwargs.update({k: v for k, v in (("api_base", api_base), ("api_key", api_key)) if v})
            return original(*args, **kwargs)
        server = api_base or api_base_for(model)
        if call.get("messages") is not None and not call.get("count_response_tokens"):
            return count_tokens(
                call["messages"],
                model=model,
                tools=call.get("tools"),
                tool_choice=call.get("tool_choice"),
                api_base=server,
                api_key=api_key,
            )
        if call.get("text") is not None:
            return count_text_tokens(
                _text_of(call["text"], model), model=model, api_base=server, api_key=api_key
            )
        return original(*args, **kwargs)

    token_counter.__llamafile_adapter__ = True  # type: ignore[attr-defined]
    return token_counter


def _is_ours(function: object) -> bool:
    return bool(getattr(function, "__llamafile_adapter__", False))


def _keep_embeddings_provider() -> None:
    """The LiteLLM proxy imports the handler named in its yaml (which installs the routing) and then
    replaces `custom_provider_map` with the yaml's list, which names only `llamafile`: the embeddings
    provider is put back, with the same handler, before an embedding call needs it."""
    providers: Any = litellm.custom_provider_map
    if not any(item.get("provider") == EMBEDDINGS_PROVIDER for item in providers):
        providers.append({"provider": EMBEDDINGS_PROVIDER, "custom_handler": _ROUTING.get_handler()})


def _wrapped_embedding(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def embedding(*args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model", args[0] if args else None)
        if is_adapter_model(model) and not kwargs.get("custom_llm_provider"):
            kwargs["model"] = f"{EMBEDDINGS_PROVIDER}/{model_key(str(model))}"
            args = args[1:]
            # The OpenAI SDK sends encoding_format="base64" unless told otherwise (and decodes float lists
            # too); LiteLLM refuses any such parameter for a custom provider. The server is asked for floats.
            kwargs.pop("encoding_format", None)
            _keep_embeddings_provider()
        return original(*args, **kwargs)

    embedding.__llamafile_adapter__ = True  # type: ignore[attr-defined]
    return embedding


# -- install / uninstall ------------------------------------------------------------------------------


class _Routing:
    """routing's saved originals (what install() replaced, so uninstall() can put it back), the handler
    LiteLLM calls, and the token counter's per-model servers. One instance: `_ROUTING`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.saved: dict[str, Any] = {}
        self.handler: LlamafileProvider | None = None
        self.api_bases: Mapping[str, str] = {}

    def get_handler(self) -> LlamafileProvider:
        if self.handler is None:
            self.handler = LlamafileProvider()
        return self.handler


_ROUTING = _Routing()

_TOKEN_COUNTER_MODULES = ("litellm", "litellm.utils")


def _manager() -> Any:
    return find_symbol("litellm.utils:ProviderConfigManager")


def installed() -> bool:
    """True when every patch is in place (so install() has nothing to do)."""
    litellm_any: Any = litellm
    handler = _ROUTING.handler
    return (
        handler is not None
        and litellm_any.LlamafileChatConfig is AdapterChatConfig
        and PROVIDER in litellm_any._custom_providers
        and PROVIDER not in litellm_any.openai_compatible_providers
        and any(item.get("custom_handler") is handler for item in litellm_any.custom_provider_map)
        and PROVIDER not in litellm_any.openai_text_completion_compatible_providers
        and all(
            getattr(getattr(litellm_any, n), "__llamafile_adapter__", False) for n in _EMBEDDING_FUNCTIONS
        )
        and getattr(_manager().get_provider_model_info, "__llamafile_adapter__", False)
        and all(
            getattr(importlib.import_module(name).token_counter, "__llamafile_adapter__", False)
            for name in _TOKEN_COUNTER_MODULES
        )
    )


def _normalized_api_bases(api_bases: Mapping[str, str]) -> dict[str, str]:
    return {model_key(model): normalize_api_base(url) for model, url in api_bases.items()}


def api_base_for(model: str) -> str | None:
    """The server register(api_bases=...) gives `model` (`x` or `llamafile/x`), if any."""
    return _ROUTING.api_bases.get(model_key(model))


def install(api_bases: Mapping[str, str] | None = None) -> LlamafileProvider:
    """Route `llamafile/` to the adapter. Idempotent, and cheap once installed."""
    servers = None if api_bases is None else _normalized_api_bases(api_bases)
    with _ROUTING.lock:
        if servers is not None:
            _ROUTING.api_bases = servers
        if installed():
            return _ROUTING.get_handler()
        verify_litellm()  # before anything changes
        handler = _ROUTING.get_handler()
        _apply(handler)
    return handler


def _apply(handler: LlamafileProvider) -> None:
    litellm_any: Any = litellm
    saved = _ROUTING.saved
    providers = litellm_any.custom_provider_map
    ours = [item for item in providers if item.get("provider") == PROVIDER]
    if not any(item.get("custom_handler") is handler for item in ours):
        saved.setdefault("provider_entries", [i for i in ours if i.get("custom_handler") is not handler])
        providers[:] = [item for item in providers if item.get("provider") != PROVIDER]
        providers.append({"provider": PROVIDER, "custom_handler": handler})
    if PROVIDER not in litellm_any._custom_providers:
        litellm_any._custom_providers.append(PROVIDER)
        saved["custom_providers"] = True
    if PROVIDER in litellm_any.openai_compatible_providers:
        litellm_any.openai_compatible_providers.remove(PROVIDER)
        saved["openai_compatible"] = True
    if PROVIDER in litellm_any.openai_text_completion_compatible_providers:
        litellm_any.openai_text_completion_compatible_providers.remove(PROVIDER)
        saved["text_completion_compatible"] = True
    if not any(item.get("provider") == EMBEDDINGS_PROVIDER for item in providers):
        providers.append({"provider": EMBEDDINGS_PROVIDER, "custom_handler": handler})
        for table in (litellm_any._custom_providers, litellm_any.provider_list):
            if EMBEDDINGS_PROVIDER not in table:
                table.append(EMBEDDINGS_PROVIDER)
                saved.setdefault("embeddings_provider_in", []).append(table)
    for name in _EMBEDDING_FUNCTIONS:
        if not getattr(getattr(litellm_any, name), "__llamafile_adapter__", False):
            saved[f"function:{name}"] = getattr(litellm_any, name)
            setattr(litellm_any, name, _wrapped_embedding(getattr(litellm_any, name)))
    if litellm_any.LlamafileChatConfig is not AdapterChatConfig:
        saved["config"] = litellm_any.LlamafileChatConfig
        litellm_any.LlamafileChatConfig = AdapterChatConfig
    manager = _manager()
    if not getattr(manager.get_provider_model_info, "__llamafile_adapter__", False):
        saved["model_info"] = inspect.getattr_static(manager, "get_provider_model_info")
        manager.get_provider_model_info = staticmethod(_wrapped_model_info(manager.get_provider_model_info))
    for name in _TOKEN_COUNTER_MODULES:
        module: Any = importlib.import_module(name)
        if not getattr(module.token_counter, "__llamafile_adapter__", False):
            saved[f"token_counter:{name}"] = module.token_counter
            module.token_counter = _wrapped_token_counter(module.token_counter)


def uninstall() -> None:
    """Undo install(): `llamafile/` goes back to LiteLLM's built-in passthrough, every table as it was."""
    litellm_any: Any = litellm
    with _ROUTING.lock:
        saved = _ROUTING.saved
        handler = _ROUTING.handler
        providers = litellm_any.custom_provider_map
        if handler is not None and any(item.get("custom_handler") is handler for item in providers):
            providers[:] = [item for item in providers if item.get("custom_handler") is not handler]
        providers.extend(saved.pop("provider_entries", []))
        if saved.pop("custom_providers", False) and PROVIDER in litellm_any._custom_providers:
            litellm_any._custom_providers.remove(PROVIDER)
        if saved.pop("openai_compatible", False) and PROVIDER not in litellm_any.openai_compatible_providers:
            litellm_any.openai_compatible_providers.append(PROVIDER)
        text_providers = litellm_any.openai_text_completion_compatible_providers
        if saved.pop("text_completion_compatible", False) and PROVIDER not in text_providers:
            text_providers.append(PROVIDER)
        providers[:] = [item for item in providers if item.get("provider") != EMBEDDINGS_PROVIDER]
        for table in saved.pop("embeddings_provider_in", []):
            if EMBEDDINGS_PROVIDER in table:
                table.remove(EMBEDDINGS_PROVIDER)
        for name in _EMBEDDING_FUNCTIONS:
            if f"function:{name}" in saved:
                setattr(litellm_any, name, saved.pop(f"function:{name}"))
        if "config" in saved:
            litellm_any.LlamafileChatConfig = saved.pop("config")
        if "model_info" in saved:
            _manager().get_provider_model_info = saved.pop("model_info")
        for name in _TOKEN_COUNTER_MODULES:
            key = f"token_counter:{name}"
            if key in saved:
                importlib.import_module(name).token_counter = saved.pop(key)  # type: ignore[attr-defined]
        _ROUTING.api_bases = {}
