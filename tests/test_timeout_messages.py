"""A call that times out while the server is still working on the reply says so: how far a stream got,
the wait that ran out, and that max_tokens bounds the reply. Other timeouts say only that nothing answered."""

from __future__ import annotations

from collections.abc import Callable

import litellm
import pytest

import litellm_llamafile
from litellm_llamafile.harness.embedded_server import EmbeddedServer

from .support.calls import call, exception_text, probed, raises_typed
from .support.fake_server import Exchange, FaultyServer, chunk

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
KEY = "sk-timeout-key-5c2e"
ROLE_ONLY = {**chunk(), "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_that_stops_mid_reply_says_how_many_tokens_it_had(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    def trickle(exchange: Exchange) -> None:
        exchange.sse([ROLE_ONLY, chunk("Once"), chunk(" upon"), chunk(" a")], end="stall")

    server = faulty(trickle)
    with raises_typed(litellm.Timeout) as caught:
        call(mode, api_base=probed(server.url), api_key=KEY, timeout=1)
    message = str(caught[0])
    assert "the server was still generating" in message
    assert "the reply so far had 3 tokens" in message  # the role-only event carried no token
    assert "no new token for 1s" in message  # the wait that ran out: timeout= bounds each wait in a stream
    assert "set max_tokens to bound it" in message
    assert server.url in message
    assert KEY not in exception_text(caught[0])


@local_only
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_non_streamed_reply_still_being_written_says_so(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(lambda exchange: exchange.stall())  # the request arrives; no reply comes
    with raises_typed(litellm.Timeout) as caught:
        call(mode, api_base=probed(server.url), api_key=KEY, timeout=1)
    message = str(caught[0])
    assert "no reply within 1s" in message  # the call's deadline, as given
    assert "the server was still generating" in message
    assert "unknown number of tokens" in message  # a non-streamed reply arrives whole
    assert "set max_tokens to bound it" in message
    assert KEY not in exception_text(caught[0])
    assert len(server.chat_requests) == 1


@local_only
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_that_never_starts_says_it_had_no_token(
    faulty: Callable[..., FaultyServer], mode: str
) -> None:
    server = faulty(lambda exchange: exchange.stall())  # no status line, no event
    with raises_typed(litellm.Timeout) as caught:
        call(mode, api_base=probed(server.url), timeout=1)
    message = str(caught[0])
    assert "no token within 1s" in message
    assert "the reply so far had 0 tokens" in message


@local_only
def test_a_count_that_times_out_claims_no_generation(faulty: Callable[..., FaultyServer]) -> None:
    """/tokenize, /apply-template, /props generate nothing: their timeouts say only that nothing answered."""

    def stall_counts(exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(200, {"chat_template": "", "total_slots": 1})
        else:
            exchange.stall()

    server = faulty(every=stall_counts)
    with pytest.raises(litellm.Timeout) as caught:
        litellm_llamafile.count_tokens([{"role": "user", "content": "Hi"}], api_base=server.url, timeout=1)
    assert "did not answer after 1s" in str(caught.value)
    assert "generating" not in str(caught.value)


@pytest.mark.live
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_real_server_still_writing_when_the_deadline_passes(
    own_server: Callable[..., EmbeddedServer], mode: str
) -> None:
    server = own_server()
    prompt = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
    litellm_llamafile.count_tokens(prompt, api_base=server.base_url)  # /props is read: only the chat waits
    with pytest.raises(litellm.Timeout) as caught:
        call(mode, api_base=server.base_url, messages=prompt, timeout=0.5, ignore_eos=True, max_tokens=4000)
    message = str(caught.value)
    assert "no reply within 0.5s" in message
    assert "the server was still generating" in message
