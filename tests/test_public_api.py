"""The package's public surface: `litellm_llamafile.__all__` is exactly what `import litellm_llamafile`
offers, every name in it resolves, and it is the surface users were given (a name leaving it is a
breaking change, caught here)."""

from __future__ import annotations

from types import ModuleType

import litellm_llamafile

PUBLIC = {
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
}


def test_all_is_exactly_the_public_surface_and_every_name_resolves() -> None:
    offered = {
        name
        for name, value in vars(litellm_llamafile).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    } - {"annotations", "os", "Mapping"}
    assert set(litellm_llamafile.__all__) == offered == PUBLIC
    assert len(litellm_llamafile.__all__) == len(set(litellm_llamafile.__all__))
    for name in litellm_llamafile.__all__:
        assert getattr(litellm_llamafile, name) is not None


def test_the_proxy_yaml_names_resolve() -> None:
    from litellm_llamafile import proxy

    assert {"handler", "request_guard", "conversation_affinity"} <= set(vars(proxy))
