"""The caller's messages, converted once per call: plain-text turns (validated: bad input fails here,
before any request), reshaped for a role strategy on demand, and the key that names the conversation
(its opening) for slot and replica affinity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.errors import refuses_input
from ..core.settings import TemplateName
from .roles import (
    RoleStrategy,
    WireMessage,
    reshape_messages,
    reshape_turns,
    strategy_for,
    text_of,
    to_text_turns,
)


@dataclass(frozen=True, slots=True)
class Conversation:
    """The caller's messages as plain-text turns, converted (and so validated) once per call."""

    turns: list[WireMessage]
    messages: Sequence[object] = ()

    @classmethod
    @refuses_input("messages")
    def of(cls, messages: Sequence[object] | Conversation) -> Conversation:
        if isinstance(messages, Conversation):
            return messages
        return cls(to_text_turns(messages), messages)

    def reshaped(self, template: TemplateName | RoleStrategy, preamble: str | None) -> list[WireMessage]:
        """The turns for `template`'s role strategy, tool instructions in the leading system text."""
        strategy = strategy_for(template)
        if strategy.tool_role or strategy.tool_calls:  # native tool turns are made from the messages
            return reshape_messages(self.messages, strategy, system_preamble=preamble)
        return reshape_turns(self.turns, strategy, system_preamble=preamble)


def conversation_key(messages: Sequence[object] | Conversation) -> int:
    """A 64-bit key for a conversation: its first system text and first user text, as given. An agent
    only appends turns, so these never change, whereas the reshaped turns do (Mistral merges a new user
    message into the previous one). One key for a slot inside a server and a replica among servers."""
    turns = Conversation.of(messages).turns
    first_system = next((text_of(t["content"]) for t in turns if t["role"] == "system"), "")
    first_user = next((text_of(t["content"]) for t in turns if t["role"] == "user"), "")
    opening = json.dumps([first_system, first_user]).encode()
    return int.from_bytes(hashlib.blake2b(opening, digest_size=8).digest(), "big")


def affinity_slot(messages: Sequence[object] | Conversation, total_slots: int) -> int:
    """A stable slot for a conversation, so each agent's requests land where its prompt prefix is cached."""
    return conversation_key(messages) % total_slots
