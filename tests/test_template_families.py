"""Role facts learned from real servers running llama.cpp's official templates (SmolLM2 under each), and
the wire messages the learned strategy sends for an agent conversation: each renders whole, in order,
and each turn's prompt extends the previous turn's (the server's prompt cache relies on it)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from litellm_llamafile.prompt.roles import OPEN, STRICT, RoleStrategy, WireMessage, reshape_messages
from litellm_llamafile.prompt.tools import tool_instructions
from litellm_llamafile.server.template_facts import facts_flow, strategy_from_facts

from .support.data import WEATHER
from .support.flows import request_on, run_on
from .support.servers import CORPUS_ROLES, Servers

TOOLS = [WEATHER]
CALL = {
    "id": "call12345",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
}
# An agent's history, one request per user/tool turn: each request's messages extend the previous ones.
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call12345", "content": "4 C, snow"},
    {"role": "assistant", "content": "Cold and snowy."},
    {"role": "user", "content": "And tomorrow?"},
    {"role": "user", "content": "Be brief."},
]
REQUEST_ENDS = (2, 4, 7)  # the prefixes of CONVERSATION sent as requests (after a user or tool turn)

PREAMBLE = tool_instructions(TOOLS)
CALL_TEXT = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
RESULT_TEXT = "Result of tool get_weather (call call12345):\n4 C, snow"

WIRE_OPEN: list[WireMessage] = [
    {"role": "system", "content": f"You are terse.\n\n{PREAMBLE}"},
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": CALL_TEXT},
    {"role": "user", "content": RESULT_TEXT},
    {"role": "assistant", "content": "Cold and snowy."},
    {"role": "user", "content": "And tomorrow?"},
    {"role": "user", "content": "Be brief."},
]
WIRE_STRICT: list[WireMessage] = [
    {"role": "user", "content": f"You are terse.\n\n{PREAMBLE}\n\nWeather in Oslo?"},
    {"role": "assistant", "content": CALL_TEXT},
    {"role": "user", "content": RESULT_TEXT},
    {"role": "assistant", "content": "Cold and snowy."},
    {"role": "user", "content": "And tomorrow?\n\nBe brief."},
]
# System role at the start, but strict alternation (no corpus family below has it; the shape is pure).
SYSTEM_ALTERNATING = RoleStrategy(system=True)
WIRE_SYSTEM_ALTERNATING: list[WireMessage] = [
    {"role": "system", "content": f"You are terse.\n\n{PREAMBLE}"},
    {"role": "user", "content": "Weather in Oslo?"},
    *WIRE_STRICT[1:],
]
WIRE = {OPEN: WIRE_OPEN, STRICT: WIRE_STRICT, SYSTEM_ALTERNATING: WIRE_SYSTEM_ALTERNATING}


@dataclass(frozen=True)
class Family:
    role: str  # a server role of tests/support/servers.py (one corpus template)
    strategy: RoleStrategy  # what the server's template accepts, as learned live
    prefix_stable: bool = True  # each request's prompt extends the previous one's
    why: str = ""


FAMILIES = [
    Family("qwen25", OPEN),
    Family("qwen3", OPEN),
    Family("llama31", OPEN),
    Family("hermes3", OPEN),
    Family("nemo", STRICT, why="system text goes into the last user turn; strict alternation"),
    Family("devstral", OPEN),
    Family("gemma2", STRICT, why="no system role; strict alternation"),
    Family("phi35", OPEN),
    Family(
        "r1distill",
        OPEN,
        prefix_stable=False,
        why="the generation prompt opens <think>, which the rendered reply in the next request lacks",
    ),
    Family("granite33", OPEN),
    Family("smollm3", OPEN),
    Family("glm46", OPEN),
    Family("minimax_m2", OPEN, prefix_stable=False, why="the generation prompt opens <think>, as R1's"),
    Family("cohere2", OPEN, prefix_stable=False, why="the generation prompt opens <|START_THINKING|>"),
    Family("gemma4", OPEN),
    Family("kimi_k3", OPEN),
    Family("gpt_oss", OPEN),
]
assert {f.role for f in FAMILIES} == set(CORPUS_ROLES)


@pytest.fixture(scope="module", params=FAMILIES, ids=lambda f: f.role)
def family(request: pytest.FixtureRequest, servers: Servers) -> Iterator[Family]:
    """One family at a time: its tests run together, then its server stops (live tier). The server
    starts here, before any cassette records, so its /health polling stays out of the cassettes."""
    servers.url(request.param.role)
    yield request.param
    servers.release(request.param.role)


def _render(url: str, messages: list[WireMessage]) -> str:
    answer = request_on(url)("POST", "/apply-template", {"messages": messages})
    prompt = answer["prompt"]
    assert isinstance(prompt, str)
    return prompt


def test_the_expected_wire_messages_follow_from_each_strategy() -> None:
    for strategy, wire in WIRE.items():
        assert reshape_messages(CONVERSATION, strategy, system_preamble=PREAMBLE) == wire


@pytest.mark.vcr
def test_role_facts_are_learned_from_the_server(family: Family, servers: Servers) -> None:
    facts = run_on(servers.url(family.role), facts_flow())
    assert facts.renders_plain_chat
    assert strategy_from_facts(facts) == family.strategy, facts.outcomes


@pytest.mark.vcr
def test_the_learned_wire_messages_render_whole_and_extend_turn_by_turn(
    family: Family, servers: Servers
) -> None:
    url = servers.url(family.role)
    prompts = []
    for end in REQUEST_ENDS:
        wire = reshape_messages(CONVERSATION[:end], family.strategy, system_preamble=PREAMBLE)
        prompt = _render(url, wire)  # a template error would raise BadRequestError here
        position = 0
        for message in wire:  # every message's text is in the prompt, in order
            found = prompt.find(message["content"].strip().splitlines()[-1], position)
            assert found >= position, (message, prompt)
            position = found
        prompts.append(prompt)
    # Trailing whitespace aside (a template may strip the reply it renders): one token at most.
    stable = all(later.startswith(earlier.rstrip()) for earlier, later in itertools.pairwise(prompts))
    assert stable is family.prefix_stable, prompts
