"""Running protocol flows in tests: against a fake request function, or a real server's driver."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from litellm_llamafile.core.settings import LlamafileSettings
from litellm_llamafile.server.servers import SERVERS
from litellm_llamafile.wire.protocol import Flow

T = TypeVar("T")


def drive(flow: Flow[T], request: Callable[[str, str, Any], Any]) -> T:
    """Run `flow` with `request(method, path, body)`; what it raises is thrown into the flow."""
    try:
        call = next(flow)
        while True:
            try:
                answer = request(call.method, call.path, call.body)
            except Exception as error:
                call = flow.throw(error)
            else:
                call = flow.send(answer)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def run_on(url: str, flow: Flow[T]) -> T:
    """Run `flow` against the real server at `url` with the adapter's blocking driver."""
    settings = LlamafileSettings.resolve(api_base=url)
    return SERVERS.get(settings.api_base).driver(settings, "smollm2").run(flow)


def request_on(url: str) -> Callable[[str, str, Any], Any]:
    """`request(method, path, body)` against the real server at `url`."""
    from litellm_llamafile.wire.protocol import HttpCall, single

    def request(method: str, path: str, body: Any) -> Any:
        return run_on(url, single(HttpCall(method, path, body)))

    return request
