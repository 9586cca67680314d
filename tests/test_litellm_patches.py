"""integration/litellm_patches.py, the one place that patches LiteLLM: what register() changes, that
unregister() puts every table back exactly, that a LiteLLM without a needed symbol is refused before
anything changes, and which server `litellm.token_counter` asks. Replay tier: no llama server (a
FaultyServer on 127.0.0.1 stands in where a count is needed)."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import litellm
import litellm.utils
import pytest

import litellm_llamafile
from litellm_llamafile.integration import litellm_patches

from .support.fake_server import Exchange, FaultyServer, props_reply

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "count these five words"}]
local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])


def litellm_tables() -> dict[str, Any]:
    """Everything register() may change, as objects (compared by identity) and list contents."""
    manager = litellm.utils.ProviderConfigManager
    return {
        "custom_provider_map": litellm.custom_provider_map,
        "custom_provider_map items": [dict(item) for item in litellm.custom_provider_map],
        "_custom_providers": list(litellm._custom_providers),
        "openai_compatible_providers": list(litellm.openai_compatible_providers),
        "LlamafileChatConfig": litellm.LlamafileChatConfig,
        "get_provider_model_info": inspect.getattr_static(manager, "get_provider_model_info"),
        "litellm.token_counter": litellm.token_counter,
        "litellm.utils.token_counter": litellm.utils.token_counter,
    }


BY_VALUE = {"custom_provider_map items", "_custom_providers", "openai_compatible_providers"}


def changed(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """The tables that differ: lists by contents, everything else by identity."""
    return {key for key in a if (a[key] != b[key] if key in BY_VALUE else a[key] is not b[key])}


@pytest.fixture
def builtin() -> Iterator[dict[str, Any]]:
    """LiteLLM as it is without the adapter; registered again afterwards."""
    litellm_llamafile.unregister()
    yield litellm_tables()
    litellm_llamafile.register()


def test_unregister_restores_every_table_exactly_and_register_installs_the_same_again(
    builtin: dict[str, Any],
) -> None:
    handler = litellm_llamafile.register()
    first = litellm_tables()
    assert set(changed(builtin, first)) == {
        "custom_provider_map items",
        "openai_compatible_providers",
        "LlamafileChatConfig",
        "get_provider_model_info",
        "litellm.token_counter",
        "litellm.utils.token_counter",
    } | ({"_custom_providers"} if "llamafile" not in builtin["_custom_providers"] else set())
    assert first["custom_provider_map"] is builtin["custom_provider_map"]  # edited in place, not replaced

    litellm_llamafile.unregister()
    assert changed(builtin, litellm_tables()) == set()
    _, provider, key, base = litellm.get_llm_provider("llamafile/x")
    assert (provider, key, base) == ("llamafile", "fake-api-key", "http://127.0.0.1:8080/v1")  # LiteLLM's own

    assert litellm_llamafile.register() is handler
    again = litellm_tables()
    assert again["LlamafileChatConfig"] is first["LlamafileChatConfig"]
    assert again["custom_provider_map items"] == first["custom_provider_map items"]
    assert again["_custom_providers"] == first["_custom_providers"]
    assert again["openai_compatible_providers"] == first["openai_compatible_providers"]
    litellm_llamafile.unregister()
    assert changed(builtin, litellm_tables()) == set()


def test_unregister_gives_back_a_llamafile_handler_the_user_had(builtin: dict[str, Any]) -> None:
    theirs = {"provider": "llamafile", "custom_handler": object()}
    litellm.custom_provider_map.append(theirs)
    try:
        litellm_llamafile.register()
        assert theirs not in litellm.custom_provider_map  # ours replaces it while registered
        litellm_llamafile.unregister()
        assert theirs in litellm.custom_provider_map
    finally:
        litellm.custom_provider_map.remove(theirs)


def test_register_is_cheap_and_changes_nothing_once_installed() -> None:
    before = litellm_tables()
    assert litellm_patches.installed()
    litellm_llamafile.register()
    assert changed(before, litellm_tables()) == set()


def test_register_after_litellm_reset_a_table_puts_the_routing_back() -> None:
    litellm.openai_compatible_providers.append("llamafile")  # as a reload of LiteLLM's lists would
    assert not litellm_patches.installed()
    litellm_llamafile.register()
    assert "llamafile" not in litellm.openai_compatible_providers
    assert litellm_patches.installed()


def test_every_symbol_the_patches_rely_on_exists_on_this_litellm() -> None:
    assert litellm_patches.missing_symbols() == []
    assert all(patch.symbols for patch in litellm_patches.PATCHES)


@pytest.mark.parametrize(
    ("target", "name", "replacement", "named"),
    [
        (litellm.utils.ProviderConfigManager, "get_provider_model_info", None, "get_provider_model_info"),
        (litellm.utils, "token_counter", lambda model="", text=None: 0, "litellm.utils:token_counter("),
    ],
    ids=["symbol gone", "parameter gone"],
)
def test_a_litellm_without_a_needed_symbol_is_refused_before_anything_changes(
    builtin: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    target: Any,
    name: str,
    replacement: Callable[..., int] | None,
    named: str,
) -> None:
    if replacement is None:
        monkeypatch.delattr(target, name)
    else:
        monkeypatch.setattr(target, name, replacement)
    before = litellm_tables() if replacement is not None else None
    with pytest.raises(litellm_llamafile.UnsupportedLiteLLMError) as caught:
        litellm_llamafile.register()
    message = str(caught.value)
    assert f"LiteLLM {litellm_patches.litellm_version()}" in message
    assert named in message
    assert "Nothing was changed" in message
    version = litellm_patches.litellm_version()
    assert f'pip install "litellm{litellm_patches.SUPPORTED_LITELLM},<{version}"' in message
    assert litellm.LlamafileChatConfig is builtin["LlamafileChatConfig"]
    assert "llamafile" in litellm.openai_compatible_providers  # the built-in untouched, not half-patched
    if before is not None:
        assert changed(before, litellm_tables()) == set()


def test_the_pin_in_pyproject_is_the_range_routing_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = [d for d in project["dependencies"] if re.match(r"litellm[<>=]", d)]
    assert core == [f"litellm{litellm_patches.SUPPORTED_LITELLM}"]
    # One range everywhere: the proxy extra pins exactly what the package pins, and neither has a ceiling.
    proxy = [d for d in project["optional-dependencies"]["proxy"] if d.startswith("litellm[")]
    assert proxy == [f"litellm[proxy]{litellm_patches.SUPPORTED_LITELLM}"]
    assert "<" not in litellm_patches.SUPPORTED_LITELLM


# -- which server token_counter asks ------------------------------------------------------------------


def counting_server(exchange: Exchange) -> None:
    """/props, /apply-template and /tokenize as llama-server shapes them; one token per word."""
    body = exchange.payload() if exchange.seen.body else {}
    if exchange.seen.path == "/props":
        props_reply(exchange)
    elif exchange.seen.path == "/apply-template":
        exchange.reply(200, {"prompt": " ".join(m["content"] for m in body["messages"])})
    elif exchange.seen.path == "/tokenize":
        exchange.reply(200, {"tokens": list(range(len(body["content"].split())))})
    else:
        exchange.reply(404, {"error": {"code": 404, "message": "File Not Found"}})


def asked(server: FaultyServer) -> list[str]:
    return [seen.path for seen in server.requests if seen.path in ("/apply-template", "/tokenize")]


@local_only
def test_token_counter_asks_the_server_api_base_names(faulty: Callable[..., FaultyServer]) -> None:
    server = faulty(every=counting_server)
    count = litellm.token_counter(model="llamafile/smol", messages=MESSAGES, api_base=server.url)
    assert count == litellm_llamafile.count_tokens(MESSAGES, api_base=server.url) > 0
    assert asked(server)


@local_only
def test_token_counter_asks_the_server_register_maps_the_model_to(
    faulty: Callable[..., FaultyServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapped, default = faulty(every=counting_server), faulty(every=counting_server)
    monkeypatch.setenv("LLAMAFILE_API_BASE", default.url)
    litellm_llamafile.register(api_bases={"smart": mapped.url + "/v1"})
    try:
        litellm.utils.token_counter(model="llamafile/smart", messages=MESSAGES)
        assert asked(mapped) and not asked(default)
        litellm.token_counter(model="llamafile/other", messages=MESSAGES)  # unmapped: the environment
        assert asked(default)
        litellm_llamafile.register()  # no api_bases: the mapping stays
        assert litellm_patches.api_base_for("llamafile/smart") == mapped.url
    finally:
        litellm_llamafile.register(api_bases={})
    assert litellm_patches.api_base_for("smart") is None


@local_only
def test_positional_token_counter_arguments_mean_what_they_mean_to_litellm(
    faulty: Callable[..., FaultyServer],
) -> None:
    server = faulty(every=counting_server)
    litellm_llamafile.register(api_bases={"smol": server.url})
    try:
        exact = litellm_llamafile.count_tokens(MESSAGES, api_base=server.url)
        # LiteLLM's order: model, custom_tokenizer, text, messages
        assert litellm.token_counter("llamafile/smol", None, None, MESSAGES) == exact
        assert litellm.token_counter("llamafile/smol", None, "three words here") == 3
        with pytest.raises(litellm.BadRequestError, match="messages=") as caught:
            litellm.token_counter("llamafile/smol", None, MESSAGES)  # messages where LiteLLM expects text
        assert "list of dict" in str(caught.value)
    finally:
        litellm_llamafile.register(api_bases={})
