"""One-slot servers for agent-shaped requests: an agent's prompt with twenty long commands is about 3.5k
tokens, more than a slot of the shared test servers holds (8192 tokens over 4 slots), so these give
their one slot the whole 8192-token context. Started on first use in the live tier; canonical URLs in
replay, as tests/support/servers.py does for the shared ones."""

from __future__ import annotations

from typing import Any

from litellm_llamafile.harness.embedded_server import EmbeddedServer

AGENT_CONTEXT = 8192
AGENT_CANONICAL = {
    "chatml": "http://agent-chatml.llamafile.test:8080",
    "mistral": "http://agent-mistral.llamafile.test:8080",
}


class AgentServers:
    def __init__(self, live: bool) -> None:
        self.live = live
        self._running: dict[str, EmbeddedServer] = {}

    def url(self, template: str) -> str:
        if not self.live:
            return AGENT_CANONICAL[template]
        if template not in self._running:
            server = EmbeddedServer(template=template, ctx_size=AGENT_CONTEXT, slots=1)
            self._running[template] = server.start()
        return self._running[template].base_url

    def canonical(self, request: Any) -> Any:
        """A vcr before_record_request step: this pool's real URLs -> the canonical ones."""
        for template, server in self._running.items():
            if request.uri.startswith(server.base_url):
                request.uri = AGENT_CANONICAL[template] + request.uri[len(server.base_url) :]
        return request

    def stop(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()
