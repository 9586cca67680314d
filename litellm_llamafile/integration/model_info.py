"""What LiteLLM is told about a `llamafile/` model: $0, the adapter's capabilities, and the context
window the server reports. The provider remembers the window on every call; LiteLLM's patched model
info (`litellm_patches.py`) answers from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import litellm

from ..core.errors import PROVIDER

CAPABILITIES: Mapping[str, bool] = {
    "supports_function_calling": True,
    "supports_tool_choice": True,
    "supports_response_schema": True,
}


def model_key(model: str) -> str:
    """`x` or `llamafile/x` -> `llamafile/x`, the key LiteLLM's cost map uses."""
    return f"{PROVIDER}/{model.removeprefix(f'{PROVIDER}/')}"


def model_entry(context_window: int | None = None) -> dict[str, Any]:
    """A local model's cost-map entry: $0, the adapter's capabilities, the server's window if known."""
    entry: dict[str, Any] = {
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "cache_read_input_token_cost": 0.0,
        "cache_creation_input_token_cost": 0.0,
        "litellm_provider": PROVIDER,
        "mode": "chat",
        **CAPABILITIES,
    }
    if context_window:
        entry.update(
            max_tokens=context_window, max_input_tokens=context_window, max_output_tokens=context_window
        )
    return entry


def remember_model(model: str, context_window: int | None = None) -> None:
    """Register `llamafile/<model>` in LiteLLM's cost map with the context window the server's /props
    reports, so get_model_info, trim_messages and the proxy's pre-call checks see the real window. $0 and
    the capabilities come along (AdapterChatConfig answers those for any name anyway). Cheap when nothing
    changed, so calling it on every call is fine."""
    key = model_key(model)
    entry = model_entry(context_window)
    known = litellm.model_cost.get(key)
    if known is not None and all(known.get(name) == value for name, value in entry.items()):
        return
    litellm.register_model({key: entry})


def model_info(model: str) -> dict[str, Any]:
    """What get_model_info answers for any llamafile/ name: the defaults of `model_entry`, overridden by
    the same fields of a registered entry (remember_model's window, or prices a user registered)."""
    key = model_key(model)
    answer: dict[str, Any] = {
        "key": key,
        "max_tokens": None,
        "max_input_tokens": None,
        "max_output_tokens": None,
    }
    answer.update(model_entry())
    registered = litellm.model_cost.get(key) or {}
    answer.update((name, registered[name]) for name in answer.keys() - {"key"} if name in registered)
    return answer
