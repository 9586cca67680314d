"""The proxy's trust boundary for adapter options (the yaml names `litellm_llamafile.proxy.request_guard`
among its callbacks), which also keeps URL credentials out of the proxy's response headers.

The Router merges a request's keyword arguments over the deployment's `litellm_params`, so without the
guard a client could override any `llamafile_*` option a deployment sets. The guard runs before that
merge, in the proxy's pre-call hook: a request may set only the behaviour options in
`settings.REQUEST_OPTIONS`, anything else is rejected with HTTP 400, and where the deployment sets an
option itself the deployment's value wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from ..core.settings import CALL_OPTION_PREFIX, REQUEST_OPTIONS, mask_userinfo


def guarded_request(data: Mapping[str, Any], deployments: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The request body with adapter options checked: raises ValueError for an option a client may not
    set, and drops an allowed one that a deployment of the model sets itself. Pure."""
    refused = sorted(
        key
        for key in data
        if key.startswith(CALL_OPTION_PREFIX) and key.removeprefix(CALL_OPTION_PREFIX) not in REQUEST_OPTIONS
    )
    if refused:
        allowed = ", ".join(CALL_OPTION_PREFIX + name for name in sorted(REQUEST_OPTIONS))
        raise ValueError(
            f"request option(s) {', '.join(refused)} may only be set in the deployment's litellm_params; "
            f"a request may set {allowed}"
        )
    fixed: set[str] = set()
    for deployment in deployments:
        params = deployment.get("litellm_params")
        if isinstance(params, Mapping):
            fixed.update(key for key in params if key.startswith(CALL_OPTION_PREFIX))
    return {key: value for key, value in data.items() if key not in fixed}


def _deployments_of(model: object) -> list[Mapping[str, Any]]:
    from litellm.proxy import proxy_server

    router: Any = getattr(proxy_server, "llm_router", None)
    if router is None or not isinstance(model, str):
        return []
    found = router.get_model_list(model_name=model) or []
    alias = (getattr(router, "model_group_alias", None) or {}).get(model)
    if not found and alias is not None:
        target = alias.get("model") if isinstance(alias, Mapping) else alias
        found = router.get_model_list(model_name=target) or []
    return [d for d in found if isinstance(d, Mapping)]


def public_headers(api_base: object) -> dict[str, str] | None:
    """The proxy's `x-litellm-model-api-base` header with user:password masked. LiteLLM's proxy answers
    every client with the deployment's api_base as it is in the config, credentials included; None
    when there are none to mask. Pure."""
    if not isinstance(api_base, str) or mask_userinfo(api_base) == api_base:
        return None
    return {"x-litellm-model-api-base": mask_userinfo(api_base.split("?")[0])}


class RequestOptionGuard(CustomLogger):
    """The proxy's pre-call hook that enforces `guarded_request` on every request body, and the response
    headers hook that keeps URL credentials out of what clients see (`public_headers`)."""

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        hidden = getattr(response, "_hidden_params", None)
        api_base = (litellm_call_info or {}).get("api_base") or (
            hidden.get("api_base") if isinstance(hidden, dict) else None
        )
        return public_headers(api_base)

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        if not any(key.startswith(CALL_OPTION_PREFIX) for key in data):
            return data
        from fastapi import HTTPException

        try:
            return guarded_request(data, _deployments_of(data.get("model")))
        except ValueError as error:
            raise HTTPException(status_code=400, detail={"error": str(error)}) from None
