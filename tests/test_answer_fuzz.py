"""Whatever JSON a server answers, the caller gets the answer or a typed LiteLLM error: never an untyped
exception, which LiteLLM would wrap as an APIConnectionError carrying a traceback (and the Router would
retry). Hypothesis rewrites parts of well-formed answers (chat, stream events, text completion,
embeddings) with arbitrary JSON, NaN, infinities and huge integers included, served over real HTTP by
FaultyServer (issue 24, item 3).

The client side (schemas and options) is fuzzed where schemas are compiled (tests of the constraints)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litellm_llamafile.core import errors

from .support.calls import HI, call, underlying
from .support.fake_server import Exchange, FaultyServer, chat_completion, chunk

local_only = pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, -1, 0]),
    st.floats(allow_nan=True, allow_infinity=True),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=12))
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
DELETE = object()

Path = tuple[str | int, ...]


def _set(document: Any, path: Path, value: Any) -> None:
    """Put `value` at `path` (or delete it); a path an earlier change cut off is left alone."""
    *parents, last = path
    for key in parents:
        inside = isinstance(document, dict) and key in document
        if not (inside or (isinstance(document, list) and isinstance(key, int) and key < len(document))):
            return
        document = document[key]
    if isinstance(document, dict) and isinstance(last, str):
        if value is DELETE:
            document.pop(last, None)
        else:
            document[last] = value
    elif isinstance(document, list) and isinstance(last, int) and last < len(document):
        document[last] = None if value is DELETE else value


def rewritten(base: Any, paths: list[Path]) -> st.SearchStrategy[Any]:
    """`base` with one to three of `paths` set to arbitrary JSON (or removed)."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        document = copy.deepcopy(base)
        for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True)):
            _set(document, path, draw(JSON_VALUES | st.just(DELETE)))
        return document

    return build()


CHOICE: list[Path] = [
    ("choices",),
    ("choices", 0),
    ("choices", 0, "index"),
    ("choices", 0, "finish_reason"),
    ("choices", 0, "logprobs"),
]
USAGE: list[Path] = [
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "completion_tokens"),
    ("usage", "total_tokens"),
    ("usage", "prompt_tokens_details"),
    ("usage", "prompt_tokens_details", "cached_tokens"),
    ("timings",),
    ("timings", "cache_n"),
]
CHAT_PATHS: list[Path] = [
    ("id",),
    ("created",),
    ("model",),
    *CHOICE,
    ("choices", 0, "message"),
    ("choices", 0, "message", "role"),
    ("choices", 0, "message", "content"),
    ("choices", 0, "message", "reasoning_content"),
    ("choices", 0, "message", "tool_calls"),
    *USAGE,
]
STREAM = [
    chunk(role="assistant"),
    chunk("Hello"),
    chunk(" there"),
    chunk(finish_reason="stop"),
    {**chunk(), "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
]
STREAM_PATHS: list[Path] = [
    (1,),
    (3,),
    *[(n, "id") for n in (0, 1)],
    *[(n, *path) for n in (1, 2, 3) for path in CHOICE],
    *[(n, "choices", 0, "delta") for n in (0, 1)],
    *[(n, "choices", 0, "delta", key) for n in (1, 2) for key in ("content", "reasoning_content", "role")],
    *[(4, *path) for path in USAGE],
    (4, "choices"),
]
TEXT = {
    "id": "cmpl-fuzz",
    "object": "text_completion",
    "created": 1,
    "model": "fuzz",
    "choices": [{"index": 0, "text": "Hello", "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
}
TEXT_PATHS: list[Path] = [("id",), ("created",), *CHOICE, ("choices", 0, "text"), *USAGE]
EMBEDDINGS = {
    "object": "list",
    "model": "fuzz",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -1.5, 3]}],
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}
EMBEDDING_PATHS: list[Path] = [
    ("data",),
    ("data", 0),
    ("data", 0, "index"),
    ("data", 0, "embedding"),
    ("data", 0, "embedding", 0),
    ("data", 0, "embedding", 2),
    ("usage",),
    ("usage", "prompt_tokens"),
    ("usage", "total_tokens"),
]


class Answers:
    """One FaultyServer for a whole fuzz test: every request but /props gets the current example."""

    def __init__(self) -> None:
        self.current: Any = None
        self.server = FaultyServer(self.chat, every=self.every)

    def every(self, exchange: Exchange) -> None:
        if exchange.seen.path == "/props":
            exchange.reply(200, exchange.server.props)
        else:
            self.chat(exchange)

    def chat(self, exchange: Exchange) -> None:
        if exchange.payload().get("stream"):
            exchange.sse(self.current if isinstance(self.current, list) else [self.current])
        else:
            exchange.reply(200, self.current)


@pytest.fixture(scope="module")
def answers() -> Iterator[Answers]:
    serving = Answers()
    yield serving
    serving.server.close()


def answer_or_typed(run: Callable[[], Any]) -> None:
    """The call returns, or fails with a LiteLLM exception the adapter raised on purpose."""
    try:
        run()
    except Exception as raised:
        error = underlying(raised)
        assert errors.is_litellm(error), repr(raised)
        if isinstance(error, litellm.APIConnectionError):  # a stream with no end is a broken stream
            assert "ended before the reply was complete" in str(error), str(error)
        assert "Traceback" not in str(error), str(error)


@local_only
@FUZZ
@given(answer=rewritten(chat_completion("Hello there"), CHAT_PATHS), mode=st.sampled_from(["sync", "async"]))
def test_any_chat_answer_is_read_or_a_typed_error(answers: Answers, answer: Any, mode: str) -> None:
    answers.current = answer
    answer_or_typed(lambda: call(mode, api_base=answers.server.url))


@local_only
@FUZZ
@given(events=rewritten(STREAM, STREAM_PATHS), mode=st.sampled_from(["stream", "astream"]))
def test_any_stream_is_read_or_a_typed_error(answers: Answers, events: Any, mode: str) -> None:
    answers.current = events
    answer_or_typed(lambda: call(mode, api_base=answers.server.url))


@local_only
@FUZZ
@given(answer=rewritten(TEXT, TEXT_PATHS))
def test_any_text_completion_answer_is_read_or_a_typed_error(answers: Answers, answer: Any) -> None:
    answers.current = answer
    answer_or_typed(
        lambda: litellm.text_completion(model="llamafile/fuzz", prompt="Hi", api_base=answers.server.url)
    )


@local_only
@FUZZ
@given(answer=rewritten(EMBEDDINGS, EMBEDDING_PATHS))
def test_any_embeddings_answer_is_read_or_a_typed_error(answers: Answers, answer: Any) -> None:
    answers.current = answer
    answer_or_typed(
        lambda: litellm.embedding(model="llamafile/fuzz", input=["Hi"], api_base=answers.server.url)
    )


# -- the reproductions of issue 24 --------------------------------------------------------------------


def _with(base: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**base, **changes})


CHAT = chat_completion("hi")
TEXT_CHOICE = TEXT["choices"][0]  # type: ignore[index]
# kind -> the answer as the server sends it (1e400 and 10**400 are valid JSON numbers)
SERVER_SHAPES: dict[str, tuple[str, str]] = {
    "created is text": ("chat", _with(CHAT, created="yesterday")),
    "created is a list": ("chat", _with(CHAT, created=[1])),
    "created is 1e400": ("chat", _with(CHAT).replace('"created": 1', '"created": 1e400')),
    "usage is 1e400": ("chat", _with(CHAT).replace('"prompt_tokens": 3', '"prompt_tokens": 1e400')),
    "text index is text": ("text", _with(TEXT, choices=[{**TEXT_CHOICE, "index": "x"}])),
    "text created is text": ("text", _with(TEXT, created="x")),
    "embedding total is text": (
        "embedding",
        _with(EMBEDDINGS, usage={"prompt_tokens": 1, "total_tokens": "x"}),
    ),
    "embedding component 10**400": ("embedding", _with(EMBEDDINGS).replace("0.25", "1" + "0" * 400)),
}


@local_only
@pytest.mark.parametrize("shape", SERVER_SHAPES)
def test_an_answer_of_the_wrong_shape_is_an_api_error_keeping_it(answers: Answers, shape: str) -> None:
    kind, text = SERVER_SHAPES[shape]
    answers.current = json.loads(text)
    url = answers.server.url
    with pytest.raises(litellm.APIError) as caught:
        if kind == "chat":
            litellm.completion(model="llamafile/fuzz", messages=HI, api_base=url)
        elif kind == "text":
            litellm.text_completion(model="llamafile/fuzz", prompt="Hi", api_base=url)
        else:
            litellm.embedding(model="llamafile/fuzz", input=["Hi"], api_base=url)
    error = caught.value
    assert type(error) is litellm.APIError and error.status_code == 200
    assert " answered with JSON that " in str(error)
    assert json.loads(error.body) == answers.current  # type: ignore[attr-defined]
