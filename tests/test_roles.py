"""Role reshaping: pure transforms, example-based and property-based."""

from __future__ import annotations

import itertools
import json

import litellm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.prompt.roles import (
    CONVERSATION_START,
    OPEN,
    STRICT,
    RoleStrategy,
    alternate_for_mistral,
    reshape_messages,
    strategy_for,
    template_from_chat_template,
    to_text_turns,
)

TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "search", "arguments": '{"q": "dodecahedron"}'},
}


def test_system_folds_into_first_user_turn_for_mistral() -> None:
    out = reshape_messages(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], TemplateName.MISTRAL
    )
    assert out == [{"role": "user", "content": "Be brief.\n\nHi"}]


def test_chatml_keeps_system_and_order() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
    ]
    assert reshape_messages(messages, TemplateName.CHATML) == messages


def test_consecutive_same_role_messages_merge_in_order() -> None:
    out = reshape_messages(
        [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "d"},
        ],
        TemplateName.MISTRAL,
    )
    assert out == [{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c\n\nd"}]


def test_tool_results_name_tool_and_call_id_and_none_is_lost() -> None:
    messages = [
        {"role": "user", "content": "find it"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL, {**TOOL_CALL, "id": "call_2"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "first result"},
        {"role": "tool", "tool_call_id": "call_2", "content": "second result"},
    ]
    out = reshape_messages(messages, TemplateName.MISTRAL)
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    # The assistant turn that had only tool_calls survives, as the JSON the model is asked to write.
    assert json.loads(out[1]["content"]) == [
        {"name": "search", "arguments": {"q": "dodecahedron"}},
        {"name": "search", "arguments": {"q": "dodecahedron"}},
    ]
    assert "call_1" in out[2]["content"] and "call_2" in out[2]["content"]
    assert "search" in out[2]["content"]
    assert out[2]["content"].index("first result") < out[2]["content"].index("second result")


def test_single_tool_call_renders_as_one_object() -> None:
    turns = to_text_turns([{"role": "assistant", "content": "Let me look.", "tool_calls": [TOOL_CALL]}])
    text = turns[0]["content"]
    assert text.startswith("Let me look.\n")
    assert json.loads(text.split("\n", 1)[1]) == {"name": "search", "arguments": {"q": "dodecahedron"}}


def test_list_of_text_parts_is_flattened() -> None:
    turns = to_text_turns(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert turns == [{"role": "user", "content": "a\nb"}]


def test_conversation_opening_with_assistant_gets_a_user_turn_first() -> None:
    out = alternate_for_mistral([{"role": "assistant", "content": "Hello!"}])
    assert out[0] == {"role": "user", "content": CONVERSATION_START}


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            "messages[0].content[0]",
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": ""}}]}],
            "messages[0].content[0]",
        ),
        ([{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}], "messages[1]"),
        ([], "empty"),
        ([{"role": "user", "content": 42}], "messages[0].content"),
        ([{"role": "user", "content": None}], "messages[0].content"),
        (["not a message"], "messages[0]"),
    ],
)
def test_bad_input_is_a_bad_request_naming_the_message(messages: list[object], needle: str) -> None:
    with pytest.raises(litellm.BadRequestError) as caught:
        reshape_messages(messages, TemplateName.MISTRAL)
    assert needle in str(caught.value)


def test_tool_instructions_go_into_the_leading_system_text() -> None:
    out = reshape_messages(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
        TemplateName.CHATML,
        system_preamble="TOOLS",
    )
    assert out[0] == {"role": "system", "content": "S\n\nTOOLS"}
    out = reshape_messages([{"role": "user", "content": "U"}], TemplateName.MISTRAL, system_preamble="TOOLS")
    assert out == [{"role": "user", "content": "TOOLS\n\nU"}]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant') }}[INST]",
            TemplateName.MISTRAL,
        ),
        (
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>{% endfor %}",
            TemplateName.CHATML,
        ),
        ("<|start_header_id|>system<|end_header_id|>", TemplateName.LLAMA3),
        ("{{ bos_token }}[INST] {{ m['content'] }} [/INST]", TemplateName.MISTRAL),
        (None, TemplateName.MISTRAL),
    ],
)
def test_strategy_follows_the_server_chat_template(template: str | None, expected: TemplateName) -> None:
    assert template_from_chat_template(template) is expected


# -- properties ------------------------------------------------------------------------------------

texts = st.text(min_size=1, max_size=12).map(lambda s: f"<{s}>")  # delimited, so "in order" is checkable
messages_strategy = st.lists(
    st.one_of(
        st.builds(lambda t: {"role": "system", "content": t}, texts),
        st.builds(lambda t: {"role": "user", "content": t}, texts),
        st.builds(lambda t: {"role": "assistant", "content": t}, texts),
        st.builds(lambda t: {"role": "user", "content": [{"type": "text", "text": t}]}, texts),
        st.builds(lambda t: {"role": "tool", "tool_call_id": "c", "content": t}, texts),
        st.builds(lambda t: {"role": "assistant", "content": t, "tool_calls": [TOOL_CALL]}, texts),
    ),
    min_size=1,
    max_size=12,
)


def _texts_of(message: dict[str, object]) -> str:
    content = message["content"]
    return content[0]["text"] if isinstance(content, list) else str(content)  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(messages_strategy, st.sampled_from([None, "TOOL PROMPT"]))
def test_mistral_output_alternates_starts_with_user_and_keeps_every_text_in_order(
    messages: list[dict[str, object]], preamble: str | None
) -> None:
    out = reshape_messages(messages, TemplateName.MISTRAL, system_preamble=preamble)
    roles = [m["role"] for m in out]
    assert roles[0] == "user"
    assert all(role in ("user", "assistant") for role in roles)
    assert all(a != b for a, b in itertools.pairwise(roles))
    flat = "\x00".join(m["content"] for m in out)
    cursor = 0
    for message in messages:
        found = flat.find(_texts_of(message), cursor)
        assert found >= 0, (message, flat)
        cursor = found + len(_texts_of(message))


@settings(max_examples=200, deadline=None)
@given(messages_strategy)
def test_chatml_output_has_one_turn_per_message(messages: list[dict[str, object]]) -> None:
    out = reshape_messages(messages, TemplateName.CHATML)
    assert len(out) == len(messages)
    for message, turn in zip(messages, out, strict=True):
        assert _texts_of(message) in turn["content"]


# -- learned strategies (sets of template facts) ---------------------------------------------------

strategies = st.builds(
    RoleStrategy, st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()
)


@settings(max_examples=300, deadline=None)
@given(messages_strategy, strategies, st.sampled_from([None, "TOOL PROMPT"]))
def test_every_strategy_keeps_every_text_in_order_and_only_the_shapes_it_allows(
    messages: list[dict[str, object]], strategy: RoleStrategy, preamble: str | None
) -> None:
    out = reshape_messages(messages, strategy, system_preamble=preamble)
    roles = [m["role"] for m in out]
    if not strategy.system:
        assert "system" not in roles
    if not strategy.tool_role:
        assert "tool" not in roles
    if not strategy.consecutive:  # text neighbours alternate; native tool turns are never merged
        text = [m["role"] if m["role"] != "tool" and "tool_calls" not in m else None for m in out]
        assert all(a != b for a, b in itertools.pairwise(text) if a and b)
    if not strategy.assistant_first:
        opening = next((r for r in roles if r != "system"), "user")
        assert opening == "user"
    flat = "\x00".join(m["content"] for m in out)
    cursor = 0
    for message in messages:
        text = _texts_of(message)
        found = flat.find(text, cursor)
        assert found >= 0, (message, flat)
        cursor = found + len(text)


def test_the_named_templates_are_the_two_extreme_strategies() -> None:
    assert strategy_for(TemplateName.MISTRAL) == STRICT
    assert strategy_for(TemplateName.CHATML) == strategy_for(TemplateName.LLAMA3) == OPEN
    assert (STRICT.value, OPEN.value) == ("mistral", "chatml")


def test_without_a_system_role_system_text_folds_into_the_next_user_turn_even_where_users_may_repeat() -> (
    None
):
    strategy = RoleStrategy(consecutive=True, assistant_first=True)
    out = reshape_messages(
        [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ],
        strategy,
    )
    assert out == [{"role": "user", "content": "S\n\na"}, {"role": "user", "content": "b"}]


def test_a_system_role_with_strict_alternation_keeps_system_and_adds_a_user_turn_before_the_assistant() -> (
    None
):
    out = reshape_messages(
        [{"role": "system", "content": "S"}, {"role": "assistant", "content": "Hi!"}],
        RoleStrategy(system=True),
    )
    assert out == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": CONVERSATION_START},
        {"role": "assistant", "content": "Hi!"},
    ]


def test_native_tool_turns_pass_through_with_call_ids_and_json_string_arguments() -> None:
    native = RoleStrategy(system=True, tool_role=True, tool_calls=True)
    call = {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": {"q": "x"}}}
    out = reshape_messages(
        [
            {"role": "user", "content": "find"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
            {"role": "tool", "tool_call_id": "call_1", "content": "r2"},
        ],
        native,
    )
    assert out[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "x"}'}}
        ],
    }
    assert out[2:] == [
        {"role": "tool", "content": "r1", "tool_call_id": "call_1", "name": "search"},
        {"role": "tool", "content": "r2", "tool_call_id": "call_1", "name": "search"},
    ]
