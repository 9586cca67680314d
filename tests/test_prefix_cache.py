"""Agent loops reuse the server's prompt cache: each request's rendered prompt extends the previous one.

llama.cpp keeps a slot's last prompt (plus the tokens it generated) and, for the next request, only
prefills what follows the longest common prefix. So for an agent that appends to its history, the
prompt of request n+1 must start with the prompt of request n, except for a small, bounded *seam*.

Definitions used below, for a conversation C and the same conversation extended by what an agent appends
(assistant reply or tool call(s), then tool results and/or a user message):

* ``short`` = render(wire(C), add_generation_prompt=True), ``long`` = render(wire(C + new), ...), where
  ``wire`` is ``build_chat_request(...).messages`` (roles reshaped, tool instructions included) and
  ``render`` is the server's Jinja chat template with ``bos_token``/``eos_token`` as the server passes them.
* ``generation prompt`` = render(..., True) minus render(..., False): what opens the assistant's reply
  (``<|im_start|>assistant\\n`` in ChatML, the assistant header in Llama 3, nothing in the Mistral file).
* ``seam`` = the part of ``short`` *before* the generation prompt that is not a prefix of ``long``:
  ``body[len(commonprefix(body, long)):]`` with ``body = render(wire(C), add_generation_prompt=False)``.

Properties: ChatML and Llama-3 strategies have an empty seam, always. The Mistral strategy has an empty
seam, except when the first new message is user-side (user / tool result / system text) and so merges
into C's last user turn: then the seam is exactly that turn's closing tag `` [/INST]`` (8 characters),
which the new, longer turn replaces. Besides: the slot the adapter pins a conversation to
(``llamafile_slot_affinity``) must not change as the agent appends, or the cache is on another slot.

The ``live`` test proves the same on real servers in tokens: turn n+1's ``cached_tokens`` is at least turn
n's ``prompt_tokens`` minus a few seam tokens, on the ChatML and the Mistral-template server, with tools.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.request import RequestProfile, build_chat_request
from litellm_llamafile.prompt.conversation import Conversation as Messages
from litellm_llamafile.prompt.roles import template_from_chat_template
from litellm_llamafile.prompt.tools import tool_name

from .support.servers import Servers

# -- the three chat templates -----------------------------------------------------------------------

# SmolLM2-135M-Instruct's own template, exactly as llama-server reports it in GET /props -> chat_template.
SMOLLM2_CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)

# Meta-Llama-3-Instruct style: header per turn, content trimmed, <|eot_id|> closes every turn.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + "
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

MISTRAL_FILE = resources.files("litellm_llamafile.harness") / "data" / "mistral-instruct.jinja"
MISTRAL_CLOSING_TAG = " [/INST]"


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    strategy: TemplateName  # what template_from_chat_template picks for `source`
    bos_token: str
    eos_token: str
    generation_prompt: str  # what add_generation_prompt=True appends


CASES = [
    # The Mistral file runs on the SmolLM2 server in the harness, which passes SmolLM2's special tokens.
    Case("mistral", MISTRAL_FILE.read_text(), TemplateName.MISTRAL, "<|im_start|>", "<|im_end|>", ""),
    Case(
        "chatml", SMOLLM2_CHATML, TemplateName.CHATML, "<|im_start|>", "<|im_end|>", "<|im_start|>assistant\n"
    ),
    Case(
        "llama3",
        LLAMA3,
        TemplateName.LLAMA3,
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    ),
]


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


_ENV = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders
_ENV.globals["raise_exception"] = _raise_exception
_COMPILED = {case.name: _ENV.from_string(case.source) for case in CASES}


def render(case: Case, wire: Sequence[Mapping[str, str]], *, add_generation_prompt: bool) -> str:
    return _COMPILED[case.name].render(
        messages=list(wire),
        add_generation_prompt=add_generation_prompt,
        bos_token=case.bos_token,
        eos_token=case.eos_token,
    )


def wire_messages(case: Case, messages: Sequence[object], tools: Sequence[Any], choice: object) -> list[Any]:
    params: dict[str, Any] = {"tools": list(tools), "tool_choice": choice} if tools else {}
    return list(
        build_chat_request(
            "smol", Messages.of(messages), params, RequestProfile(strategy=case.strategy)
        ).messages
    )


def seam_of(short_body: str, long_prompt: str) -> str:
    """What of the shorter prompt (without its generation prompt) the longer one does not start with."""
    common = 0
    for a, b in zip(short_body, long_prompt, strict=False):
        if a != b:
            break
        common += 1
    return short_body[common:]


def test_each_template_gets_the_strategy_under_test() -> None:
    for case in CASES:
        assert template_from_chat_template(case.source) is case.strategy, case.name


# -- random agent conversations --------------------------------------------------------------------


def _tool(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": sorted(properties)},
        },
    }


TOOL_POOL = [
    _tool("read_notes", "Read the research notes on a topic.", {"topic": {"type": "string"}}),
    _tool(
        "write_file", "Write text to a file.", {"filename": {"type": "string"}, "text": {"type": "string"}}
    ),
    _tool("finish", "End the task with the final answer.", {"answer": {"type": "string"}}),
    _tool("web_search", "Search the web.", {"query": {"type": "string"}, "limit": {"type": "integer"}}),
]
POOL_NAMES = [tool_name(tool) for tool in TOOL_POOL]

# Text with what tends to break prefixes: surrounding whitespace (Llama 3 trims), newlines, template
# tags and special tokens inside content, non-ASCII.
_ATOMS = st.sampled_from(
    [" ", "\n", "\n\n", "[INST]", "[/INST]", "<|im_end|>", "<|eot_id|>", "{", "}", '"', "é", "🦉", "Rome"]
)
texts = st.lists(st.one_of(_ATOMS, st.text(max_size=8)), max_size=5).map("".join)
nonempty_texts = st.lists(st.one_of(_ATOMS, st.text(min_size=1, max_size=8)), min_size=1, max_size=5).map(
    "".join
)
arguments = st.dictionaries(
    st.sampled_from(["topic", "filename", "text", "answer", "query", "limit"]),
    st.one_of(texts, st.integers(-5, 500)),
    max_size=3,
)


class _Ids:
    """Call ids unique within one conversation, as an agent's SDK hands them out."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> str:
        self.next += 1
        return f"call_{self.next}"


@st.composite
def user_message(draw: st.DrawFn) -> dict[str, Any]:
    text = draw(nonempty_texts)
    if draw(st.booleans()):
        return {"role": "user", "content": text}
    return {"role": "user", "content": [{"type": "text", "text": text}]}


@st.composite
def agent_step(draw: st.DrawFn, ids: _Ids, names: Sequence[str]) -> list[dict[str, Any]]:
    """What an agent appends after one request: 1 to 3 messages."""
    kind = draw(st.sampled_from(["call", "call", "reply", "nudge", "call+user"]))
    if kind == "nudge":  # the reply was unusable (cut off): the agent drops it and asks again
        return [draw(user_message())]
    if kind == "reply":  # prose answer, then the user (or the agent's driver) talks
        return [{"role": "assistant", "content": draw(texts)}, draw(user_message())]
    parallel = 1 if kind == "call+user" else draw(st.integers(1, 2))
    calls = []
    for _ in range(parallel):
        raw = draw(arguments)
        encoded = json.dumps(raw) if draw(st.booleans()) else json.dumps(raw, separators=(",", ":"))
        calls.append(
            {
                "id": ids(),
                "type": "function",
                "function": {"name": draw(st.sampled_from(names)), "arguments": encoded},
            }
        )
    assistant: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
    assistant["content"] = draw(st.sampled_from([None, "", "Let me check."]))
    step: list[dict[str, Any]] = [assistant]
    for call in calls:
        result: dict[str, Any] = {"role": "tool", "tool_call_id": call["id"], "content": draw(texts)}
        if draw(st.booleans()):
            result["name"] = call["function"]["name"]
        step.append(result)
    if kind == "call+user":
        step.append(draw(user_message()))
    return step


@dataclass
class Conversation:
    tools: list[dict[str, Any]]
    history: list[dict[str, Any]]  # what the agent sent for request n
    new: list[dict[str, Any]]  # what it appended before request n+1
    choice_before: object
    choice_after: object


def _choices(tools: Sequence[Any]) -> st.SearchStrategy[object]:
    if not tools:
        return st.just(None)
    named = [{"type": "function", "function": {"name": tool_name(tool)}} for tool in tools]
    return st.sampled_from(["auto", "required", None, *named])


@st.composite
def conversations(draw: st.DrawFn) -> Conversation:
    tools = draw(
        st.one_of(
            st.just([]), st.lists(st.sampled_from(TOOL_POOL), min_size=1, max_size=4, unique_by=tool_name)
        )
    )
    names = [tool_name(tool) for tool in tools] or POOL_NAMES  # histories may hold calls of earlier tools
    ids = _Ids()
    history: list[dict[str, Any]] = []
    if draw(st.booleans()):
        history.append(
            {"role": draw(st.sampled_from(["system", "developer"])), "content": draw(nonempty_texts)}
        )
    history.append(draw(user_message()))
    for _ in range(draw(st.integers(0, 4))):
        history += draw(agent_step(ids, names))
    new = draw(agent_step(ids, names))
    return Conversation(tools, history, new, draw(_choices(tools)), draw(_choices(tools)))


PROPERTY_SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _expected_seam(case: Case, conversation: Conversation) -> str:
    first_new_role = conversation.new[0]["role"]
    merges = case.strategy is TemplateName.MISTRAL and first_new_role != "assistant"
    return MISTRAL_CLOSING_TAG if merges else ""


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@PROPERTY_SETTINGS
@given(conversation=conversations())
def test_next_prompt_extends_the_previous_one_up_to_a_bounded_seam(
    case: Case, conversation: Conversation
) -> None:
    before = wire_messages(case, conversation.history, conversation.tools, conversation.choice_before)
    after = wire_messages(
        case, conversation.history + conversation.new, conversation.tools, conversation.choice_after
    )
    short = render(case, before, add_generation_prompt=True)
    body = render(case, before, add_generation_prompt=False)
    long = render(case, after, add_generation_prompt=True)

    assert short == body + case.generation_prompt
    seam = seam_of(body, long)
    assert seam == _expected_seam(case, conversation), (
        seam,
        body[-80:],
        long[len(body) - 80 : len(body) + 40],
    )
    assert len(seam) <= len(MISTRAL_CLOSING_TAG)
    # The seam is only ever the end of the last turn: every earlier turn is byte-identical on the wire.
    assert after[: len(before) - 1] == before[:-1]
    assert after[len(before) - 1]["content"].startswith(before[-1]["content"])
    # And when no merge happens, the whole previous wire is kept.
    if not seam:
        assert after[: len(before)] == before


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@PROPERTY_SETTINGS
@given(conversation=conversations())
def test_an_assistant_reply_continues_right_after_the_generation_prompt(
    case: Case, conversation: Conversation
) -> None:
    """When the agent appends the assistant's reply first, the previous prompt *including* its generation
    prompt is a prefix (ChatML / Llama 3), so even the tokens the model generated can stay cached."""
    if conversation.new[0]["role"] != "assistant":
        conversation.new.insert(0, {"role": "assistant", "content": "Noted."})
    before = wire_messages(case, conversation.history, conversation.tools, conversation.choice_before)
    after = wire_messages(
        case, conversation.history + conversation.new, conversation.tools, conversation.choice_after
    )
    assert render(case, after, add_generation_prompt=True).startswith(
        render(case, before, add_generation_prompt=True)
    )


SLOT_COUNTS = (2, 3, 4, 8)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
@PROPERTY_SETTINGS
@given(conversation=conversations())
def test_slot_affinity_keeps_a_growing_conversation_on_one_slot(
    case: Case, conversation: Conversation
) -> None:
    """`llamafile_slot_affinity` sends `id_slot`; if that moves while the agent appends, the next request
    lands on a slot that does not hold the conversation and the whole prompt is prefilled again."""

    def slot(messages: list[dict[str, Any]], choice: object, slots: int) -> int:
        params: dict[str, Any] = (
            {"tools": conversation.tools, "tool_choice": choice} if conversation.tools else {}
        )
        request = build_chat_request(
            "smol", Messages.of(messages), params, RequestProfile(strategy=case.strategy, slots=slots)
        )
        return int(request.payload["id_slot"])

    for slots in SLOT_COUNTS:
        assert slot(conversation.history, conversation.choice_before, slots) == slot(
            conversation.history + conversation.new, conversation.choice_after, slots
        ), slots


def test_slot_affinity_from_the_first_request_to_the_second() -> None:
    """The agent of examples/agent.py, turn 1 -> turn 2 (the smallest counterexample family)."""
    tools = TOOL_POOL[:3]
    first = [
        {"role": "system", "content": "You are a research agent."},
        {"role": "user", "content": "Roman dodecahedrons"},
    ]
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "read_notes", "arguments": '{"topic": "purpose"}'},
    }
    second = [*first, {"role": "assistant", "content": None, "tool_calls": [call]}]
    second.append({"role": "tool", "tool_call_id": "call_1", "content": "Unknown."})
    moved = []
    for case in CASES:
        for slots in SLOT_COUNTS:
            slot_1, slot_2 = (
                build_chat_request(
                    "smol",
                    Messages.of(m),
                    {"tools": tools},
                    RequestProfile(strategy=case.strategy, slots=slots),
                ).payload["id_slot"]
                for m in (first, second)
            )
            if slot_1 != slot_2:
                moved.append(f"{case.name}/{slots} slots: turn 1 -> slot {slot_1}, turn 2 -> slot {slot_2}")
    assert not moved, moved


@pytest.mark.xfail(
    strict=True,
    reason=(
        "design choice (test_request.py::test_tool_choice_none_sends_no_tools_and_no_instructions): "
        "tool_choice='none' drops the tool instructions from the leading system text, so the request after "
        "a switch to 'none' shares almost no prefix and is prefilled from scratch. Keeping the instructions "
        "(build_chat_request: preamble from `tools`, not `offered`) would keep the cache"
    ),
)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_switching_tool_choice_to_none_keeps_the_prefix(case: Case) -> None:
    tools = TOOL_POOL[:3]
    history = [{"role": "system", "content": "You are a research agent."}, {"role": "user", "content": "Go."}]
    before = wire_messages(case, history, tools, "required")
    after = wire_messages(case, [*history, {"role": "user", "content": "Answer now."}], tools, "none")
    body = render(case, before, add_generation_prompt=False)
    assert len(seam_of(body, render(case, after, add_generation_prompt=True))) <= len(MISTRAL_CLOSING_TAG)


# -- live: the server's own cache counters ----------------------------------------------------------

# Token seam allowed per turn: the generation prompt's role tokens (ChatML: "assistant", "\n") or the
# Mistral closing tag " [/INST]" when the next user-side text merges into the last user turn, plus one
# token of BPE re-merge at the boundary.
SEAM_TOKENS = 6

LIVE_TOOLS = TOOL_POOL[:3]


def _call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


# What an agent appends between requests, scripted (the model's actual replies are not used, so the test
# does not depend on what a 135M model writes): single call, parallel calls, prose + user, a nudge that
# merges into the previous user-side turn in the Mistral strategy, a call after it.
LIVE_STEPS: list[list[dict[str, Any]]] = [
    [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("c1", "read_notes", topic="roman dodecahedron")],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "Small hollow bronze objects with twelve pentagonal faces.",
        },
    ],
    [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                _call("c2", "read_notes", topic="purpose"),
                _call("c3", "write_file", filename="a.txt", text="x"),
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "Their purpose is unknown."},
        {"role": "tool", "tool_call_id": "c3", "content": "Wrote 1 characters to a.txt."},
    ],
    [
        {"role": "assistant", "content": "They are Gallo-Roman objects of unknown purpose."},
        {"role": "user", "content": "Write that to a file, then finish."},
    ],
    [{"role": "user", "content": "Answer with one tool call."}],
    [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("c4", "finish", answer="Unknown purpose.")],
        },
        {"role": "tool", "tool_call_id": "c4", "content": "Done."},
    ],
]


@pytest.mark.live
@pytest.mark.parametrize("role", ["chatml", "mistral"])
def test_live_each_turn_reuses_the_previous_prompt_from_the_cache(servers: Servers, role: str) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a research agent. Use the tools."},
        {"role": "user", "content": "Tell me about Roman dodecahedrons"},
    ]
    api_base = servers.url(role)
    usage: list[tuple[int, int]] = []
    for turn, step in enumerate([[], *LIVE_STEPS]):
        messages += step
        response = litellm.completion(
            model="llamafile/smol",
            messages=messages,
            tools=LIVE_TOOLS,
            tool_choice="required" if turn % 2 else "auto",  # the tool prompt does not depend on it
            api_base=api_base,
            max_tokens=4,
            temperature=0,
            seed=7,
            timeout=300,
        )
        details = response.usage.prompt_tokens_details
        cached = int(details.cached_tokens or 0) if details is not None else 0
        usage.append((response.usage.prompt_tokens, cached))
    seams = [previous[0] - current[1] for previous, current in itertools.pairwise(usage)]
    print(f"{role}: (prompt_tokens, cached_tokens) per turn {usage}; seam tokens {seams}")
    for turn, ((prompt_before, _), (prompt_now, cached_now)) in enumerate(itertools.pairwise(usage), 2):
        assert prompt_now > prompt_before, (turn, usage)
        assert cached_now >= prompt_before - SEAM_TOKENS, (role, turn, usage)
