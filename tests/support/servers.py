"""Real llama.cpp servers by role (chatml, mistral, keyed, and one per llama.cpp corpus template), started
on first use in the live tier and replaced by canonical replay URLs otherwise; the key the keyed server is
recorded with."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litellm_llamafile.harness.embedded_server import EmbeddedServer

CASSETTES = Path(__file__).resolve().parents[2] / "cassettes"
# The key the keyed server is started with while recording; test_cassettes.py proves no cassette holds it.
RECORDING_API_KEY = "sk-llamafile-recording-key-7f3a9c"
# Replay URLs: recorded requests are rewritten to these hosts, so cassettes do not depend on free ports.
CANONICAL = {
    "chatml": "http://chatml.llamafile.test:8080",
    "mistral": "http://mistral.llamafile.test:8080",
    "keyed": "http://keyed.llamafile.test:8080",
}
# Roles running SmolLM2 under one of llama.cpp's official templates (tests/support/template_corpus.py):
# role -> template file stem.
CORPUS_ROLES = {
    "qwen25": "Qwen-Qwen2.5-7B-Instruct",
    "qwen3": "Qwen-Qwen3-0.6B",
    "llama31": "meta-llama-Llama-3.1-8B-Instruct",
    "hermes3": "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
    "nemo": "mistralai-Mistral-Nemo-Instruct-2407",
    "devstral": "unsloth-mistral-Devstral-Small-2507",
    "gemma2": "google-gemma-2-2b-it",
    "phi35": "microsoft-Phi-3.5-mini-instruct",
    "r1distill": "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
    "granite33": "ibm-granite-granite-3.3-2B-Instruct",
    "smollm3": "HuggingFaceTB-SmolLM3-3B",
    "glm46": "GLM-4.6",
    # Thinking and native-format templates the agent conversation runs on (test_family_conversations.py).
    "minimax_m2": "MiniMax-M2",  # opens a think block even with thinking off
    "cohere2": "Cohere2MoE",  # the same, with <|START_THINKING|>
    "gemma4": "google-gemma-4-31B-it",  # the thinking switch is rendered into the system block
    "kimi_k3": "Kimi-K3",  # the server's own reply reader refuses SmolLM2's unconstrained text
    "gpt_oss": "openai-gpt-oss-120b",  # the server alone fails a plain chat
}
# Roles running another real model (litellm_llamafile.embedded_server.MODELS), under its own template or
# a corpus one: role -> (model, template file stem or None for the model's own).
MODEL_ROLES: dict[str, tuple[str, str | None]] = {
    "qwen": ("qwen", None),  # Qwen2.5-Coder 0.5B, trained to call tools, its own template
    "gemma3": ("gemma3", None),  # Gemma 3 270M: its tokenizer adds BOS; no template (ChatML fallback)
    "gemma3_gemma2": ("gemma3", "google-gemma-2-2b-it"),  # a template that writes {{ bos_token }} itself
    "gemma3_llama31": ("gemma3", "meta-llama-Llama-3.1-8B-Instruct"),
    "gemma3_nemo": ("gemma3", "mistralai-Mistral-Nemo-Instruct-2407"),
}
MODEL_CONTEXT = 4096  # one slot: the small servers these slower models get
# Templates whose generation prompts and native tool rendering the family-prompt tests read (the reply
# formats themselves are checked by the case corpus, tests/support/families).
PROMPT_ROLES = {
    "qwen35": "Qwen3.5-4B",
    "glm47": "GLM-4.7-Flash",
    "dsv32": "deepseek-ai-DeepSeek-V3.2",
    "dsv4": "deepseek-ai-DeepSeek-V4",
    "dsv41": "deepseek-ai-DeepSeek-V4-Flash-0731",
}
TEMPLATE_ROLES = {**CORPUS_ROLES, **PROMPT_ROLES}
CANONICAL.update({role: f"http://{role}.llamafile.test:8080" for role in [*TEMPLATE_ROLES, *MODEL_ROLES]})


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
        if role in MODEL_ROLES and role not in self._running:
            model, stem = MODEL_ROLES[role]
            extra = [] if stem is None else ["--chat-template-file", str(_template(stem))]
            server = EmbeddedServer(model=model, ctx_size=MODEL_CONTEXT, slots=1, extra_args=extra)
            self._running[role] = server.start()
            self.url_to_role[server.base_url] = role
        if role in TEMPLATE_ROLES and role not in self._running:
            template = _template(TEMPLATE_ROLES[role])
            server = EmbeddedServer(
                ctx_size=2048, slots=1, extra_args=["--chat-template-file", str(template)]
            )
            self._running[role] = server.start()
            self.url_to_role[server.base_url] = role
        if role not in self._running:
            server = EmbeddedServer(
                template="mistral" if role == "mistral" else "chatml",
                api_key=RECORDING_API_KEY if role == "keyed" else None,
            )
            self._running[role] = server.start()
            self.url_to_role[server.base_url] = role
        return self._running[role].base_url

    def release(self, role: str) -> None:
        """Stop one role's server now (the corpus roles are many; they need not all run at once)."""
        server = self._running.pop(role, None)
        if server is not None:
            self.url_to_role.pop(server.base_url, None)  # its port may serve another role later
            server.stop()

    def stop(self) -> None:
        for server in self._running.values():
            server.stop()
        self._running.clear()


def _template(stem: str) -> Path:
    from .template_corpus import template_path  # live only: the corpus is unpacked on demand

    return template_path(stem)


@dataclass
class SentRequest:
    path: str
    body: Any
    headers: dict[str, str]
