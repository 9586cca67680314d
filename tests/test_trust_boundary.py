"""Where a request goes and what it carries are the deployment's business, never a caller's option: no
`llamafile_*` option can point a call at another URL (and so carry the deployment's key there), and through
the proxy a client may set only the behaviour options, with the deployment's own values winning."""

from __future__ import annotations

from collections.abc import Callable

import litellm
import pytest

from litellm_llamafile.core.settings import REQUEST_OPTIONS
from litellm_llamafile.integration.request_guard import guarded_request

from .support.calls import HI, MODES, call, exception_text, raises_typed
from .support.fake_server import FaultyServer

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
ENV_KEY = "sk-deployment-key-from-the-environment-5b1e"


@local_only
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("option", ["llamafile_api_base", "llamafile_api_key"])
def test_connection_settings_are_never_adapter_options(
    faulty: Callable[..., FaultyServer], monkeypatch: pytest.MonkeyPatch, mode: str, option: str
) -> None:
    monkeypatch.setenv("LLAMAFILE_API_KEY", ENV_KEY)
    good, evil = faulty(), faulty()
    with raises_typed(litellm.BadRequestError) as caught:
        call(mode, api_base=good.url, **{option: evil.url})
    assert option in str(caught[0])
    assert evil.requests == [] and good.requests == []  # refused before anything was sent
    assert ENV_KEY not in exception_text(caught[0])


@local_only
def test_a_router_caller_cannot_send_the_environment_key_to_its_own_url(
    faulty: Callable[..., FaultyServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMAFILE_API_KEY", ENV_KEY)
    good, evil = faulty(), faulty()
    router = litellm.Router(
        model_list=[{"model_name": "m", "litellm_params": {"model": "llamafile/m", "api_base": good.url}}]
    )
    with pytest.raises(litellm.BadRequestError):
        router.completion(model="m", messages=HI, llamafile_api_base=evil.url)
    assert evil.requests == []
    router.completion(model="m", messages=HI)  # the deployment itself still works, with its key
    assert good.chat_requests[-1].headers["authorization"] == f"Bearer {ENV_KEY}"


def test_the_proxy_guard_refuses_options_outside_the_allow_list() -> None:
    for option in ("llamafile_api_base", "llamafile_api_key", "llamafile_loading_wait", "llamafile_nope"):
        with pytest.raises(ValueError, match=option):
            guarded_request({"model": "m", option: "x"}, [])


def test_the_proxy_guard_keeps_allowed_options_unless_the_deployment_sets_them() -> None:
    request = {"model": "m", "messages": HI, "llamafile_constrain_auto": True, "llamafile_repair_retry": True}
    deployment = {"litellm_params": {"model": "llamafile/m", "llamafile_repair_retry": False}}
    assert guarded_request(request, [deployment]) == {
        "model": "m",
        "messages": HI,
        "llamafile_constrain_auto": True,  # allowed, and the deployment does not set it
    }
    assert guarded_request(request, []) == request


def test_the_allow_list_holds_behaviour_options_only() -> None:
    assert {
        "api_base",
        "api_key",
        "loading_wait",
        "connect_retries",
        "connect_timeout",
        "timeout",
    }.isdisjoint(REQUEST_OPTIONS)
