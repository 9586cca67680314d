"""How `llamafile/` reaches this adapter instead of LiteLLM's built-in passthrough.

LiteLLM resolves `llamafile/x` to its own OpenAI-compatible `llamafile` provider before it ever looks at
`custom_provider_map`, so a custom handler of that name is silently bypassed. `install()` changes exactly
these LiteLLM tables (all reversible by `uninstall()`, proven on the litellm range in pyproject.toml):

1. `custom_provider_map` gets our handler for `llamafile` (replacing any earlier entry of that name);
   `_custom_providers` lists it, so completion() dispatches to the custom branch.
2. `openai_compatible_providers` loses `llamafile`, so the OpenAI passthrough branch no longer matches.
3. `litellm.LlamafileChatConfig` becomes `AdapterChatConfig`: it stops inventing `fake-api-key` and a
   default `api_base` during provider resolution (our settings resolve both), and supplies a token
   counter for the proxy's `/utils/token_counter`.
4. `ProviderConfigManager.get_provider_model_info` answers `AdapterChatConfig` for `llamafile` (LiteLLM
   has no registry for provider token counters; its switch statement is wrapped, not edited).
5. `litellm.token_counter` (and `litellm.utils.token_counter`) count `llamafile/` models exactly through
   the server; every other model goes to LiteLLM's original function.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import litellm
import litellm.utils
from litellm.exceptions import APIError
from litellm.llms.base_llm.base_utils import BaseTokenCounter
from litellm.llms.llamafile.chat.transformation import LlamafileChatConfig
from litellm.types.utils import LlmProviders, TokenCountResponse

from .errors import PROVIDER
from .provider import LlamafileProvider

handler = LlamafileProvider()

# LiteLLM's module-level tables are untyped globals; these aliases mark the one place we edit them.
_litellm: Any = litellm
_litellm_utils: Any = litellm.utils

_lock = threading.Lock()
_saved: dict[str, Any] = {}


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
        from .tokens import acount_tokens

        params = (deployment or {}).get("litellm_params")
        litellm_params: Mapping[str, Any] = params if isinstance(params, Mapping) else {}
        options = {k: v for k, v in litellm_params.items() if k.startswith("llamafile_")}
        try:
            total = await acount_tokens(
                messages or [],
                model=model_to_use,
                tools=tools,
                api_base=litellm_params.get("api_base"),
                api_key=litellm_params.get("api_key"),
                options=options,
            )
        except APIError as error:
            return TokenCountResponse(
                total_tokens=0,
                request_model=request_model,
                model_used=model_to_use,
                tokenizer_type="llamafile",
                error=True,
                error_message=str(error),
                status_code=getattr(error, "status_code", 500),
            )
        except Exception as error:
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
    """LiteLLM's llamafile config minus the invented key and default base, plus an exact token counter."""

    def get_openai_compatible_provider_info(
        self, api_base: str | None, api_key: str | None
    ) -> tuple[str | None, str | None]:
        return api_base, api_key

    def get_token_counter(self) -> BaseTokenCounter | None:
        return LlamafileTokenCounter()


_ADAPTER_CONFIG = AdapterChatConfig()


def _wrapped_model_info(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_provider_model_info(model: str | None, provider: LlmProviders, *args: Any, **kwargs: Any) -> Any:
        if provider == LlmProviders.LLAMAFILE:
            return _ADAPTER_CONFIG
        return original(model, provider, *args, **kwargs)

    get_provider_model_info.__llamafile_adapter__ = True  # type: ignore[attr-defined]
    return get_provider_model_info


def _wrapped_token_counter(original: Callable[..., int]) -> Callable[..., int]:
    @functools.wraps(original)
    def token_counter(model: str = "", *args: Any, **kwargs: Any) -> int:
        if is_adapter_model(model) and not args and kwargs.get("custom_tokenizer") is None:
            from .tokens import count_text_tokens, count_tokens

            if kwargs.get("messages") is not None and not kwargs.get("count_response_tokens"):
                return count_tokens(
                    kwargs["messages"],
                    model=model,
                    tools=kwargs.get("tools"),
                    tool_choice=kwargs.get("tool_choice"),
                )
            if kwargs.get("text") is not None:
                text = kwargs["text"]
                return count_text_tokens("".join(text) if isinstance(text, list) else text, model=model)
        return original(model, *args, **kwargs)

    token_counter.__llamafile_adapter__ = True  # type: ignore[attr-defined]
    return token_counter


def install() -> LlamafileProvider:
    """Route `llamafile/` to the adapter. Idempotent."""
    from litellm.utils import ProviderConfigManager, custom_llm_setup

    manager: Any = ProviderConfigManager
    with _lock:
        entry = {"provider": PROVIDER, "custom_handler": handler}
        others = [item for item in _litellm.custom_provider_map if item.get("provider") != PROVIDER]
        _litellm.custom_provider_map = [*others, entry]
        if PROVIDER not in _litellm._custom_providers:
            _litellm._custom_providers.append(PROVIDER)  # first, so custom_llm_setup doesn't warn of a shadow
        custom_llm_setup()  # type: ignore[no-untyped-call]
        if PROVIDER in _litellm.openai_compatible_providers:
            _litellm.openai_compatible_providers.remove(PROVIDER)
            _saved["openai_compatible"] = True
        if _litellm.LlamafileChatConfig is not AdapterChatConfig:
            _saved["config"] = _litellm.LlamafileChatConfig
            _litellm.LlamafileChatConfig = AdapterChatConfig
        model_info = manager.get_provider_model_info
        if not getattr(model_info, "__llamafile_adapter__", False):
            _saved["model_info"] = model_info
            manager.get_provider_model_info = staticmethod(_wrapped_model_info(model_info))
        for module in (_litellm, _litellm_utils):
            counter = module.token_counter
            if not getattr(counter, "__llamafile_adapter__", False):
                _saved[f"token_counter:{module.__name__}"] = counter
                module.token_counter = _wrapped_token_counter(counter)
    return handler


def uninstall() -> None:
    """Undo install(): `llamafile/` goes back to LiteLLM's built-in passthrough."""
    from litellm.utils import ProviderConfigManager

    manager: Any = ProviderConfigManager
    with _lock:
        others = [item for item in _litellm.custom_provider_map if item.get("provider") != PROVIDER]
        _litellm.custom_provider_map = others
        if PROVIDER in _litellm._custom_providers:
            _litellm._custom_providers.remove(PROVIDER)
        if _saved.pop("openai_compatible", False) and PROVIDER not in _litellm.openai_compatible_providers:
            _litellm.openai_compatible_providers.append(PROVIDER)
        if "config" in _saved:
            _litellm.LlamafileChatConfig = _saved.pop("config")
        if "model_info" in _saved:
            manager.get_provider_model_info = staticmethod(_saved.pop("model_info"))
        for module in (_litellm, _litellm_utils):
            key = f"token_counter:{module.__name__}"
            if key in _saved:
                module.token_counter = _saved.pop(key)


def installed() -> bool:
    """True when `llamafile/` currently reaches this adapter."""
    return _litellm.LlamafileChatConfig is AdapterChatConfig and any(
        item.get("custom_handler") is handler for item in _litellm.custom_provider_map
    )
