"""litellm-llamafile: a local llamafile / llama.cpp server as a first-class LiteLLM provider.

import litellm, litellm_llamafile
litellm_llamafile.register()
litellm.completion(model="llamafile/mistral-7b-instruct", messages=[...], tools=[...])
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Local-first: unless the user chose otherwise, LiteLLM reads its bundled price map instead of fetching
# one from GitHub at import (only effective when litellm has not been imported yet).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from .core.settings import LlamafileSettings, TemplateName
from .flows.counting import acount_tokens, count_text_tokens, count_tokens
from .integration import litellm_patches
from .integration.litellm_patches import UnsupportedLiteLLMError
from .integration.provider import LlamafileProvider
from .prompt.roles import reshape_messages
from .reply.parsing import ParsedReply, ToolCall, parse_tool_calls

__all__ = [
    "LlamafileProvider",
    "LlamafileSettings",
    "ParsedReply",
    "TemplateName",
    "ToolCall",
    "UnsupportedLiteLLMError",
    "acount_tokens",
    "count_text_tokens",
    "count_tokens",
    "parse_tool_calls",
    "register",
    "reshape_messages",
    "unregister",
]
__version__ = "0.1.0"


def register(api_bases: Mapping[str, str] | None = None) -> LlamafileProvider:
    """Make `model="llamafile/<name>"` use this adapter in completion/acompletion (streaming too),
    litellm.token_counter and the proxy; `supports_function_calling` & co. are true for every
    llamafile/ model from here on. Idempotent; returns the handler LiteLLM calls.

    `api_bases` maps model names (`"smart"` or `"llamafile/smart"`) to their servers, for calls that
    cannot pass `api_base=` themselves, such as a framework's `litellm.token_counter(model=...)`.
    Given, it replaces the previous mapping; omitted, the mapping stays as it was.

    Raises UnsupportedLiteLLMError, changing nothing, when the installed LiteLLM lacks a symbol the
    routing relies on."""
    return litellm_patches.install(api_bases)


def unregister() -> None:
    """Give `llamafile/` back to LiteLLM's built-in passthrough, every patched table as it was."""
    litellm_patches.uninstall()
