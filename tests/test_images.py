"""Image parts: forwarded, in order, to a server that can see (or that does not say); a typed error before
any request to one whose /props says it cannot; roles still reshaped around them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import litellm
import pytest

from litellm_llamafile import count_tokens
from litellm_llamafile.core.settings import TemplateName
from litellm_llamafile.flows.counting import IMAGE_TOKENS
from litellm_llamafile.prompt.roles import reshape_messages

from .support.calls import MODES, call
from .support.data import PIXEL
from .support.fake_server import Exchange, FaultyServer, answer_chat, chat_completion
from .support.servers import Servers

CAT = {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}}
DOG = {"type": "image_url", "image_url": {"url": "https://example.invalid/dog.png"}}
# The fake servers listen on 127.0.0.1; every other host stays blocked.
pytestmark = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
LOOK = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "What is in"}, CAT, {"type": "text", "text": "and"}, DOG],
    },
]


# -- reshaping (pure) -------------------------------------------------------------------------------


def test_image_parts_keep_their_place_among_the_text() -> None:
    out = reshape_messages(LOOK, TemplateName.CHATML)
    assert out == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is in"}, CAT, {"type": "text", "text": "and"}, DOG],
        },
    ]


def test_system_text_folds_in_front_of_the_images_without_a_system_role() -> None:
    out = reshape_messages(LOOK, TemplateName.MISTRAL)
    assert out == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Be brief.\n\nWhat is in"},
                CAT,
                {"type": "text", "text": "and"},
                DOG,
            ],
        }
    ]


def test_merged_user_turns_keep_every_image_in_order() -> None:
    messages = [
        {"role": "user", "content": [CAT]},
        {"role": "user", "content": "and this one?"},
        {"role": "user", "content": [DOG, {"type": "text", "text": "same?"}]},
    ]
    out = reshape_messages(messages, TemplateName.MISTRAL)
    assert out == [
        {
            "role": "user",
            "content": [
                CAT,
                {"type": "text", "text": "\n\nand this one?\n\n"},
                DOG,
                {"type": "text", "text": "same?"},
            ],
        }
    ]


def test_text_only_lists_are_still_sent_as_text() -> None:
    out = reshape_messages(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, "b"]}], TemplateName.CHATML
    )
    assert out == [{"role": "user", "content": "a\nb"}]


@pytest.mark.parametrize("role", ["system", "assistant", "tool"])
def test_an_image_outside_a_user_message_is_a_bad_request(role: str) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "hi"}, {"role": role, "content": [CAT]}]
    with pytest.raises(litellm.BadRequestError, match=r"messages\[1\]\.content\[0\].*user message"):
        reshape_messages(messages, TemplateName.CHATML)


def test_an_image_part_without_a_url_is_a_bad_request() -> None:
    with pytest.raises(litellm.BadRequestError, match=r"messages\[0\]\.content\[0\].*without a url"):
        reshape_messages(
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], TemplateName.CHATML
        )


# -- what reaches the server -----------------------------------------------------------------------


def sent_messages(server: FaultyServer) -> list[Any]:
    (seen,) = server.chat_requests
    return list(json.loads(seen.body)["messages"])


@pytest.mark.parametrize("mode", MODES)
def test_a_server_that_can_see_gets_the_images_exactly_as_given(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(answer_chat("A cat and a dog."), props={"modalities": {"vision": True, "audio": False}})
    call(mode, api_base=server.url, messages=LOOK)
    assert sent_messages(server) == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "What is in"}, CAT, {"type": "text", "text": "and"}, DOG],
        },
    ]


@pytest.mark.parametrize("mode", MODES)
def test_a_server_that_cannot_see_is_a_bad_request_before_the_chat_request(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(answer_chat("unused"), props={"modalities": {"vision": False}})
    with pytest.raises(litellm.BadRequestError, match=r"cannot read images.*--mmproj") as caught:
        call(mode, api_base=server.url, messages=LOOK)
    assert server.url in str(caught.value)
    assert server.chat_requests == []


def test_a_server_that_does_not_say_gets_the_images_and_answers_for_itself(
    faulty: Callable[..., FaultyServer],
) -> None:
    """Classic llamafile has no /props: whether it can see is not known, so the images are forwarded."""

    def classic(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(404, {"error": {"code": 404, "message": "File Not Found"}})
        else:
            exchange.reply(200, chat_completion("A cat."))

    server = faulty(every=classic)
    answer = litellm.completion(model="llamafile/smol", api_base=server.url, messages=LOOK[1:])
    assert answer.choices[0].message.content == "A cat."
    (seen,) = [s for s in server.requests if s.path == "/v1/chat/completions"]
    assert json.loads(seen.body)["messages"][0]["content"][1] == CAT


# -- a real text-only llama-server -----------------------------------------------------------------


@pytest.mark.live
@pytest.mark.parametrize("mode", MODES)
def test_a_real_text_only_server_refuses_images_with_how_to_start_a_vision_one(
    servers: Servers, mode: str
) -> None:
    with pytest.raises(litellm.BadRequestError, match=r"cannot read images.*--mmproj"):
        call(mode, api_base=servers.url("chatml"), messages=LOOK)


@pytest.mark.live
def test_an_image_counts_a_fixed_estimate_on_top_of_the_exact_text_count(servers: Servers) -> None:
    url = servers.url("chatml")
    with_images = count_tokens(LOOK, api_base=url)
    text_only = [LOOK[0], {"role": "user", "content": "What is in\nand"}]
    assert with_images == count_tokens(text_only, api_base=url) + 2 * IMAGE_TOKENS
