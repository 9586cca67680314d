"""A scripted server on the transport seam (`Pools(transport=httpx.MockTransport(...))`): each expected
request (method, path, and what its JSON body must hold) with its canned answer, in order. The adapter's
real drivers and flows run unchanged; only the socket is replaced. For what is really about sockets
(deadlines, caps, resets) tests keep `fake_server.FaultyServer`.

    script = Script([Expect("GET", "/props", answer=PROPS), Expect("POST", "/v1/chat/completions", ...)])
    with script.serving() as url:
        litellm.completion(model="llamafile/x", api_base=url, messages=...)
    script.done()   # every expected request was made
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from litellm_llamafile.server.servers import SERVERS, Server
from litellm_llamafile.wire.transport import Pools

_URLS = itertools.count(1)


@dataclass
class Expect:
    """One request the adapter should make next, and what the server answers. `body` lists keys the
    request's JSON must hold with these values (a callable value is a predicate on the sent value);
    `answer` is a JSON body, or `events` an event stream; `status` an HTTP error status."""

    method: str
    path: str
    body: Mapping[str, Any] = field(default_factory=dict)
    answer: Any = None
    events: list[Any] | None = None
    status: int = 200

    def matches(self, request: httpx.Request) -> str | None:
        """Why `request` is not this one, or None."""
        if (request.method, request.url.path) != (self.method, self.path):
            return f"expected {self.method} {self.path}, got {request.method} {request.url.path}"
        sent = json.loads(request.content) if request.content else {}
        for key, wanted in self.body.items():
            value = sent.get(key)
            ok = wanted(value) if callable(wanted) else value == wanted
            if not ok:
                return f"{self.method} {self.path}: body[{key!r}] is {json.dumps(value)[:200]}"
        return None

    def response(self) -> httpx.Response:
        if self.events is not None:
            lines = "".join(f"data: {json.dumps(event)}\n\n" for event in self.events) + "data: [DONE]\n\n"
            return httpx.Response(self.status, text=lines, headers={"content-type": "text/event-stream"})
        return httpx.Response(self.status, json=self.answer if self.answer is not None else {})


class Script:
    """Answers the adapter's requests from a list of `Expect`s, in order; `sent` holds each request's
    JSON body. An unexpected request fails the test where it is made (as a 599 the adapter raises)."""

    def __init__(self, steps: list[Expect]) -> None:
        self.steps = list(steps)
        self.sent: list[tuple[str, str, Any]] = []
        self.problems: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        if not self.steps:
            self.problems.append(f"unexpected {request.method} {request.url.path}")
            return httpx.Response(599, text="unexpected request")
        step = self.steps.pop(0)
        why = step.matches(request)
        if why is not None:
            self.problems.append(why)
            return httpx.Response(599, text=why)
        return step.response()

    def serving(self) -> contextlib.AbstractContextManager[str]:
        """A base URL whose Server answers from this script (in the adapter's registry meanwhile)."""
        return serving(self)

    def done(self) -> None:
        assert not self.problems, self.problems
        assert not self.steps, f"never asked: {[(s.method, s.path) for s in self.steps]}"


def sent_to(script: Script | Routes, path: str) -> list[Any]:
    """The JSON bodies of the requests to `path`, in order."""
    return [body for _, p, body in script.sent if p == path]


def event_stream(events: list[Any], *, end: str = "[DONE]") -> httpx.Response:
    """An answer as a server-sent event stream; a str event is sent as its own raw line."""
    lines = [event if isinstance(event, str) else f"data: {json.dumps(event)}" for event in events]
    text = "".join(f"{line}\n\n" for line in [*lines, *([f"data: {end}"] if end else [])])
    return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})


def error(status: int, message: str, kind: str = "server_error") -> httpx.Response:
    """llama-server's error answer."""
    return httpx.Response(status, json={"error": {"code": status, "message": message, "type": kind}})


class Routes:
    """A server that answers by path, in any order (`answers[path](json_body)`: JSON for a 200, or an
    `httpx.Response`), and records every request; for flows whose exact request sequence is not the
    point (a count's segments)."""

    def __init__(self, answers: Mapping[str, Callable[[Any], Any]]) -> None:
        self.answers = answers
        self.sent: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.sent.append((request.method, request.url.path, body))
        answer = self.answers.get(request.url.path)
        if answer is None:
            return error(404, "File Not Found", "not_found_error")
        reply = answer(body)
        return reply if isinstance(reply, httpx.Response) else httpx.Response(200, json=reply)

    def requests_to(self, path: str) -> list[Any]:
        return sent_to(self, path)

    def serving(self) -> contextlib.AbstractContextManager[str]:
        return serving(self)


@contextlib.contextmanager
def serving(handler: Callable[[httpx.Request], httpx.Response]) -> Iterator[str]:
    """A base URL whose Server answers with `handler` on the transport seam (in the adapter's registry
    meanwhile; then a plain Server takes its place and the scripted pools are closed)."""
    url = f"http://scripted-{next(_URLS)}.test"
    SERVERS.adopt(Server(url, pools=Pools(transport=httpx.MockTransport(handler))))
    try:
        yield url
    finally:
        SERVERS.adopt(Server(url))
