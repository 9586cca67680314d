"""Real llama.cpp servers by role (chatml, mistral, keyed), started on first use in the live tier and
replaced by canonical replay URLs otherwise; the key the keyed server is recorded with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litellm_llamafile.embedded_server import EmbeddedServer

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
# The key the keyed server is started with while recording; test_cassettes.py proves no cassette holds it.
RECORDING_API_KEY = "sk-llamafile-recording-key-7f3a9c"
# Replay URLs: recorded requests are rewritten to these hosts, so cassettes do not depend on free ports.
CANONICAL = {
    "chatml": "http://chatml.llamafile.test:8080",
    "mistral": "http://mistral.llamafile.test:8080",
    "keyed": "http://keyed.llamafile.test:8080",
}


class Servers:
    """Base URLs by role; real servers are started on first use (live) or never (replay)."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self._running: dict[str, EmbeddedServer] = {}
        self.url_to_role: dict[str, str] = {}

    def url(self, role: str) -> str:
        if not self.live:
            return CANONICAL[role]
        if role == "chatml" and os.environ.get("LLAMAFILE_API_BASE"):
            url = os.environ["LLAMAFILE_API_BASE"].rstrip("/").removesuffix("/v1")
            self.url_to_role[url] = role
            return url
        if role not in self._running:
            server = EmbeddedServer(
                template="mistral" if role == "mistral" else "chatml",
                api_key=RECORDING_API_KEY if role == "keyed" else None,
            )
            self._running[role] = server.start()
            self.url_to_role[server.base_url] = role
        return self._running[role].base_url

    def stop(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()


@dataclass
class SentRequest:
    path: str
    body: Any
    headers: dict[str, str]
