"""The sans-IO protocol, without a network: flows are driven by hand, answers decoded by the pure checks."""

from __future__ import annotations

import json

import litellm
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litellm.exceptions import NotFoundError

from litellm_llamafile.server.probe import ServerInfo, info_from_props, probe_flow
from litellm_llamafile.server.servers import ServerRegistry
from litellm_llamafile.wire.protocol import (
    DONE,
    Endpoint,
    HttpCall,
    LineSplitter,
    LineTooLong,
    Peer,
    sse_event,
)

PEER = Peer("http://h/v1/chat/completions", "m", None)


def test_sse_lines_decode_to_events_done_or_nothing() -> None:
    assert sse_event(PEER, 'data: {"a": 1}') == {"a": 1}
    assert sse_event(PEER, "data: [DONE]") is DONE
    assert sse_event(PEER, ": keep-alive") is None
    assert sse_event(PEER, "") is None
    assert sse_event(PEER, 'data: {"a": 1, "error": null}') == {"a": 1, "error": None}


def test_an_error_event_is_the_typed_error_it_names() -> None:
    with pytest.raises(litellm.ContextWindowExceededError):
        sse_event(PEER, 'error: {"code": 500, "message": "Context size has been exceeded."}')
    with pytest.raises(litellm.APIError, match="not JSON"):
        sse_event(PEER, "data: {broken")


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
        ),
        max_size=20,
    ),
    st.data(),
)
def test_lines_are_the_same_however_the_bytes_are_chunked(lines: list[str], data: st.DataObject) -> None:
    stream = "".join(f"{line}\n" for line in lines).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    splitter = LineSplitter(limit=10_000)
    out: list[str] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += splitter.feed(stream[a:b])
    assert out == lines
    assert splitter.rest() == b""


def test_a_line_past_the_bound_is_refused_and_a_cut_line_is_left_over() -> None:
    splitter = LineSplitter(limit=8)
    assert splitter.feed(b"short\npart") == ["short"]
    assert splitter.rest() == b"part"
    with pytest.raises(LineTooLong):
        splitter.feed(b"-of-a-very-long-line")


def test_probing_asks_props_once_and_learns_the_template() -> None:
    flow = probe_flow()
    assert next(flow) == HttpCall("GET", Endpoint.PROPS)
    with pytest.raises(StopIteration) as done:
        flow.send({"chat_template": "<|im_start|>system", "total_slots": 2})
    assert done.value.value.total_slots == 2
    assert done.value.value.has_props


def test_a_server_without_props_gets_the_strict_shape() -> None:
    flow = probe_flow()
    next(flow)
    with pytest.raises(StopIteration) as done:
        flow.throw(NotFoundError(message="no", model="m", llm_provider="llamafile"))
    assert done.value.value == ServerInfo()


def test_a_loading_server_is_not_taken_for_an_old_one() -> None:
    flow = probe_flow()
    next(flow)
    loading = litellm.ServiceUnavailableError(message="loading", model="m", llm_provider="llamafile")
    with pytest.raises(litellm.ServiceUnavailableError):
        flow.throw(loading)


def test_props_facts_are_read_defensively() -> None:
    info = info_from_props({"chat_template": 3, "default_generation_settings": "x", "total_slots": "4"})
    assert info.chat_template is None and info.n_ctx is None and info.total_slots is None


def test_a_server_is_probed_once_and_forgotten_on_demand() -> None:
    registry = ServerRegistry()
    server = registry.get("http://h:1")
    assert registry.get("http://h:1") is server
    flow = server.info_flow()
    next(flow)
    with pytest.raises(StopIteration):
        flow.send({"chat_template": "x", "total_slots": 1})
    with pytest.raises(StopIteration) as known:
        next(server.info_flow())  # known: no HTTP
    assert known.value.value.total_slots == 1
    server.tokens.remember([b"k"], 5)
    registry.forget()
    assert server.info is None and server.tokens.request(b"k") is None
    assert json.dumps(Endpoint.CHAT) == '"/v1/chat/completions"'
