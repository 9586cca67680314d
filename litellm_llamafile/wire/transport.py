"""Where HTTP happens: the one blocking driver and the one async driver that run protocol flows.

Retries happen only where they are safe: while nothing listens (connect errors, a bounded number of
times) and while the server answers 503 because it is still loading (up to `loading_wait` seconds).
A request the server has started answering is never retried.

Failures are raised outside the `except` that caught them: httpx errors hold the request, and with it the
Authorization header, so chaining them (`__context__`) would put the API key inside our exceptions.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar, cast

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from ..core import errors
from ..core.redaction import Secrets
from ..core.settings import LlamafileSettings
from .aiohttp_transport import AiohttpTransport
from .httpcore_transport import Deadline, DeadlineTransport, until
from .protocol import (
    JSON,
    C,
    Endpoint,
    EventDecoder,
    Flow,
    HttpCall,
    LineTooLong,
    Peer,
    Step,
    StreamMachine,
    carries_text,
    collected_events,
    is_event_stream,
    json_object,
    step,
    text_size,
)

T = TypeVar("T")
# llama-server and llamafile (cpp-httplib) close a connection idle for 5 s. Reusing one at that instant
# fails as "Server disconnected", which for a POST is not safe to retry, so ours expire first.
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=4)
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
# Paths whose requests make the server generate: a read that runs out of time there is a reply in progress.
_REPLY_PATHS = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS})
# Characters of stream text worth a worker thread: reply parsing costs up to ~3 us a character
# (bench/linear_time.py), so 64 Ki of them hold the event loop for a fraction of a second at most.
LARGE_TEXT = 64 << 10


class _Loading(Exception):
    """The server answered 503 (model still loading): worth waiting for."""

    def __init__(self, response: httpx.Response, body: str) -> None:
        super().__init__("server loading")
        self.response = response
        self.body = body


class _CutOff(Exception):
    """The server sent its status line, then the connection broke before the body was complete."""

    def __init__(self, response: httpx.Response, received: bytes, reason: str) -> None:
        super().__init__("body cut off")
        self.response = response
        self.received = received
        self.reason = reason


async def _close_at_loop_shutdown(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


class Pools:
    """One server's connections: a blocking client, and one async client per event loop (httpx async
    clients are bound to the loop that created them). `transport` (an `httpx.MockTransport`) replaces
    the network for both: the seam that tests needing no socket go through."""

    def __init__(self, transport: httpx.MockTransport | None = None) -> None:
        self._transport = transport
        # When the server last answered, and whether a connection to it failed since its knowledge was
        # last checked: what tells a Server that the model behind the URL may have changed.
        self._answered = time.monotonic()
        self._lost = False
        # The server drops kept-alive connections at will (llama-server's router, when it swaps models: a
        # request sent on such a connection gets "Server disconnected without sending a response", and a
        # POST the server may have received is never sent twice): each request on its own connection.
        self.close_each = False
        self._sync: httpx.Client | None = None
        # loop -> (its client, the async generator that closes that client when the loop shuts down)
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    def answered(self) -> None:
        self._answered = time.monotonic()

    def lost(self) -> None:
        self._lost = True

    def quiet_for(self) -> float:
        """Seconds since the server last answered (on any connection of this pool)."""
        return time.monotonic() - self._answered

    def take_lost(self) -> bool:
        """Whether a connection failed since the last call, which resets it."""
        lost, self._lost = self._lost, False
        return lost

    def sync(self) -> httpx.Client:
        if self._sync is None or self._sync.is_closed:
            transport = self._transport or DeadlineTransport(POOL_LIMITS)
            self._sync = httpx.Client(transport=transport, trust_env=False)
        return self._sync

    async def for_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        for closed in [other for other in self._async if other.is_closed()]:
            # A loop closed without shutdown_asyncgens cannot close its client any more; dropping our
            # reference at least lets the garbage collector reclaim the client and its sockets.
            del self._async[closed]
        entry = self._async.get(loop)
        if entry is not None and not entry[0].is_closed:
            return entry[0]
        transport = self._transport or AiohttpTransport(POOL_LIMITS)
        client = httpx.AsyncClient(transport=transport, trust_env=False)
        closer = _close_at_loop_shutdown(client)
        self._async[loop] = (client, closer)
        # Started, the closer is an unfinished async generator of this loop, and asyncio.run() / Runner
        # finalize those (loop.shutdown_asyncgens) while the loop still runs: the client's sockets are
        # closed before its loop is. Without it every asyncio.run() left its keep-alive sockets open.
        await closer.__anext__()
        return client

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None


def _body_text(response: httpx.Response, received: bytes) -> str:
    return received.decode(response.encoding or "utf-8", errors="replace")


class _TooLarge(Exception):
    """An answer past the configured body or line bound."""


class _Budget:
    """One request's limits: the deadline `timeout=` sets for the whole call (every request of it, the
    /props probe included, draws on the one deadline of its driver), and the body bound. A stream's
    deadline covers its opening; then it moves on after every event, so each wait for the next event
    (however its bytes trickle in) may take up to `timeout`."""

    def __init__(self, settings: LlamafileSettings, call: Deadline) -> None:
        self.deadline = Deadline.copy(call)  # its own: a stream moves it on
        self.wait = settings.timeout
        self.max_body = settings.max_body_bytes
        self._connect = settings.connect_timeout

    def remaining(self) -> float:
        return max(self.deadline.left(), 0.001)

    def passed(self) -> bool:
        return self.deadline.left() <= 0

    def next_event(self) -> None:
        """A stream opened or delivered an event: the wait for the next one starts now."""
        self.deadline.rearm(self.wait)

    def timeout(self, *, stream: bool) -> httpx.Timeout:
        """Each phase, waiting for a pooled connection included, gets what is left of the call. Reads and
        writes wait until the deadline, which the sync transport keeps between two bytes too; to the
        async transport (aiohttp) a stream's reads may each wait `timeout`, as its events may (the
        driver bounds the opening and each event itself)."""
        left = self.remaining()
        bound = until(self.deadline, self.wait if stream else left)
        return httpx.Timeout(connect=min(self._connect, left), read=bound, write=bound, pool=left)

    def take(self, received: bytearray, chunk: bytes) -> None:
        """Add a body chunk, within the body bound and the deadline (a trickling server)."""
        received += chunk
        if len(received) > self.max_body:
            raise _TooLarge(f"a body larger than {self.max_body} bytes")
        if self.passed():
            raise httpx.ReadTimeout("the call's deadline passed while the body arrived")


@contextmanager
def _cut_off_if_broken(response: httpx.Response, received: bytearray) -> Iterator[None]:
    """A connection that breaks after the status line is a _CutOff carrying what did arrive (a timeout
    stays a timeout)."""
    try:
        yield
    except httpx.TimeoutException:
        raise
    except httpx.TransportError as error:
        raise _CutOff(response, bytes(received), str(error) or type(error).__name__) from None


def _read(response: httpx.Response, budget: _Budget) -> str:
    """The body of a response opened with stream=True, closed after."""
    received = bytearray()
    try:
        with _cut_off_if_broken(response, received):
            for chunk in response.iter_bytes():
                budget.take(received, chunk)
    finally:
        response.close()
    return _body_text(response, bytes(received))


async def _aread(response: httpx.Response, budget: _Budget) -> str:
    received = bytearray()
    try:
        with _cut_off_if_broken(response, received):
            async for chunk in response.aiter_bytes():
                budget.take(received, chunk)
    finally:
        await response.aclose()
    return _body_text(response, bytes(received))


def _caller_error(
    error: BaseException,
    peer: Peer,
    replying: bool,
    timeout: float,
    streaming: bool,
    streamed: int | None,
    waited: float | None,
) -> Exception:
    """`error`, raised while calling `peer`, as the caller's LiteLLM exception (`replying`: the path is one
    where the server generates, so a read timeout means it was still at it)."""
    url, model, secret = peer.url, peer.model, peer.secret
    if isinstance(error, _CutOff):
        reason = errors.mask(error.reason, secret)
        return errors.bad_body(
            url,
            model,
            error.response.status_code,
            _body_text(error.response, error.received),
            secret,
            f"a body cut off after {len(error.received)} bytes ({reason})",
        )
    if isinstance(error, _Loading):
        return errors.from_status(
            503,
            error.body or "server still loading",
            url=url,
            model=model,
            secret=secret,
            response=error.response,
        )
    if isinstance(error, _TooLarge | LineTooLong):
        return errors.too_large(url, model, str(error))
    if isinstance(error, _CONNECT_ERRORS):
        return errors.connection_failed(url, model, errors.mask(str(error) or type(error).__name__, secret))
    if isinstance(error, httpx.ReadTimeout | TimeoutError) and replying:
        # The request was sent (a read timed out; asyncio's deadline on the async path): say the server
        # was still at it, how far a stream got, and the wait that ran out.
        seconds = waited or timeout
        return errors.timed_out_generating(url, model, seconds, streamed)
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return errors.timed_out(url, model, timeout)
    if isinstance(error, httpx.HTTPError):
        broken = errors.stream_broken if streaming else errors.connection_broken
        return broken(url, model, errors.mask(str(error) or type(error).__name__, secret))
    return error if isinstance(error, Exception) else RuntimeError(str(error))


class _Policy:
    """What both drivers share: the URL, headers, retry policy and how each failure is mapped."""

    def __init__(self, pools: Pools, settings: LlamafileSettings, model: str) -> None:
        self.pools = pools
        self.settings = settings
        self.model = model
        self.secret = Secrets(*settings.secret_values())
        # A driver serves one call: `timeout=` is the deadline of all of it.
        self.deadline = Deadline(settings.timeout)

    def url(self, path: str) -> str:
        return f"{self.settings.url_base}{path}"

    def public_url(self, path: str) -> str:
        """The URL as messages show it: no user:password."""
        return f"{self.settings.public_base}{path}"

    def peer(self, path: str) -> Peer:
        return Peer(self.public_url(path), self.model, self.secret)

    def headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.settings.auth_headers()}
        if stream or self.pools.close_each:
            # llama-server closes the connection after a streamed reply although it says Keep-Alive (and
            # a router whenever it swaps models); a request sent on it before the close arrives fails
            # ("Server disconnected"), and a POST is not safe to retry. So such a connection never goes
            # back to the pool.
            headers["Connection"] = "close"
        return headers

    def build(
        self, client: httpx.Client | httpx.AsyncClient, call: HttpCall, budget: _Budget, *, stream: bool
    ) -> httpx.Request:
        return client.build_request(
            call.method,
            self.url(call.path),
            json=call.body,
            headers=self.headers(stream=stream),
            timeout=budget.timeout(stream=stream),
        )

    def retry_kwargs(self, budget: _Budget) -> dict[str, Any]:
        def stop(state: RetryCallState) -> bool:
            if budget.passed():
                return True
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Loading):
                return (state.seconds_since_start or 0.0) >= self.settings.loading_wait
            return state.attempt_number > self.settings.connect_retries

        return {
            "retry": retry_if_exception_type((*_CONNECT_ERRORS, _Loading)),
            "wait": wait_exponential(multiplier=0.25, max=2.0),
            "stop": stop,
            "reraise": True,
        }

    def check(self, response: httpx.Response, body: str, path: str) -> None:
        self.pools.answered()
        if response.status_code == 503:
            raise _Loading(response, body)
        if response.status_code >= 400:
            raise errors.from_status(
                response.status_code,
                body,
                url=self.public_url(path),
                model=self.model,
                secret=self.secret,
                response=response,
            )

    def not_a_stream(self, response: httpx.Response, body: str, path: str) -> Exception:
        status = response.status_code
        url = self.public_url(path)
        return errors.bad_body(
            url, self.model, status, body, self.secret, "a body that is not an event stream"
        )

    def translate(
        self,
        error: BaseException,
        path: str,
        *,
        streaming: bool = False,
        streamed: int | None = None,
        waited: float | None = None,
    ) -> Exception:
        """An exception raised while calling `path` -> the LiteLLM exception the caller gets. For a stream,
        `streamed` is the tokens it delivered and `waited` the wait for the next one that ran out."""
        if isinstance(error, _CutOff | httpx.TransportError):  # the server may be another one next time
            self.pools.lost()
        return _caller_error(
            error, self.peer(path), path in _REPLY_PATHS, self.settings.timeout, streaming, streamed, waited
        )

    def advance(
        self, flow: Flow[T], call: HttpCall | None, answer: JSON | None, failure: Exception | None
    ) -> Step[T]:
        """The flow's next step, once it has `call`'s answer (or its failure thrown in; its start when
        `call` is None). What the flow raises reaches the caller as a LiteLLM exception (`unexpected`)."""
        try:
            return step(flow, answer, failure)
        except Exception as error:
            mapped = self.unexpected(error, call, answer)
        raise mapped  # outside the except: nothing chained to it

    def translated(self, step: Callable[[JSON], list[C]], event: JSON, path: str) -> list[C]:
        """A stream translation step on `event`; what it raises, as `unexpected` maps it."""
        try:
            return step(event)
        except Exception as error:
            mapped = self.unexpected(error, HttpCall("POST", path), event)
        raise mapped

    def unexpected(self, error: Exception, call: HttpCall | None, received: object) -> Exception:
        """An exception from a flow or a stream translation -> the caller's LiteLLM exception: LiteLLM's
        own pass as they are; before any request, anything else is the caller's input that could not be
        prepared (BadRequestError); after an answer, an answer the readers could not use, quoted."""
        if errors.is_litellm(error):
            return error
        if call is None:
            return errors.invalid_request(
                f"the call could not be prepared: {errors.describe(error)}", self.model
            )
        url = self.public_url(call.path)
        if isinstance(error, errors.BadAnswer):
            return errors.unreadable_answer(url, self.model, self.secret, error.why, received, error.part)
        why = f"an answer the adapter could not read ({errors.describe(error)})"
        return errors.unreadable_answer(url, self.model, self.secret, why, received)

    def answer(self, call: HttpCall, response: httpx.Response, body: str) -> JSON:
        peer = self.peer(call.path)
        if call.stream:
            return collected_events(peer, body, self.settings.max_line_bytes)
        return json_object(peer, response.status_code, body)

    def decoder(self, path: str) -> EventDecoder:
        return EventDecoder(self.peer(path), self.settings.max_line_bytes)


# What a stream's end translation is quoted as when it fails (it reads no event of its own).
STREAM_END: JSON = {"stream": "ended"}


class SyncDriver(_Policy):
    """Blocking HTTP: runs flows and opens event streams."""

    def send(self, call: HttpCall) -> JSON:
        client = self.pools.sync()
        budget = _Budget(self.settings, self.deadline)

        def once() -> tuple[httpx.Response, str]:
            response = client.send(self.build(client, call, budget, stream=call.stream), stream=True)
            body = _read(response, budget)
            self.check(response, body, call.path)
            return response, body

        try:
            response, body = Retrying(**self.retry_kwargs(budget))(once)
        except Exception as error:
            failure = self.translate(error, call.path)
        else:
            return self.answer(call, response, body)
        raise failure

    def run(self, flow: Flow[T]) -> T:
        """Drive a flow to its end. A failed call is thrown into the flow, which may handle it."""
        answer: JSON | None = None
        failure: Exception | None = None
        call: HttpCall | None = None
        while not (now := self.advance(flow, call, answer, failure)).done:
            call, answer, failure = cast(HttpCall, now.call), None, None
            try:
                answer = self.send(call)
            except Exception as error:  # thrown in outside this block: nothing chained to it
                failure = error
        return cast(T, now.result)

    @contextmanager
    def events(self, call: HttpCall) -> Iterator[Iterator[JSON]]:
        """Open an SSE stream (retrying only until the server answers) and yield its JSON events. The
        call's deadline bounds the wait for the answer to start; then each read waits up to `timeout`."""
        client = self.pools.sync()
        budget = _Budget(self.settings, self.deadline)

        def opened() -> httpx.Response:
            response = client.send(self.build(client, call, budget, stream=True), stream=True)
            if response.status_code >= 400 or not is_event_stream(response.headers.get("content-type")):
                body = _read(response, budget)
                self.check(response, body, call.path)
                raise self.not_a_stream(response, body, call.path)
            self.pools.answered()
            return response

        failure: Exception | None = None
        try:
            response = Retrying(**self.retry_kwargs(budget))(opened)
        except Exception as error:
            failure = self.translate(error, call.path, streamed=0)
        if failure is not None:
            raise failure
        budget.next_event()
        try:
            yield self._events(response.iter_bytes(), call.path, budget)
        finally:
            response.close()

    def stream(self, call: HttpCall, machine: StreamMachine[C]) -> Iterator[C]:
        """Run a stream through its translation; a reply cut by the server's context ends as cut off."""
        with self.events(call) as events:
            try:
                for event in events:
                    yield from self.translated(machine.on_event, event, call.path)
                    if machine.settled:
                        break
            except errors.ReplyOutOfContext:
                machine.cut_off()
        yield from self.translated(lambda _: machine.on_end(), STREAM_END, call.path)

    def _events(self, chunks: Iterator[bytes], path: str, budget: _Budget) -> Iterator[JSON]:
        """The stream's events; every read waits at most until the deadline, which each event moves on."""
        decoder, failure, streamed = self.decoder(path), None, 0
        try:
            for chunk in chunks:
                for event in decoder.events(chunk):
                    streamed += carries_text(event)
                    yield event
                    budget.next_event()
                if decoder.done:
                    return
            decoder.close()
        except (httpx.HTTPError, LineTooLong) as error:
            # raised below: nothing chained to it
            failure = self.translate(error, path, streaming=True, streamed=streamed, waited=budget.wait)
        finally:
            self.pools.answered()
        if failure is not None:
            raise failure


class AsyncDriver(_Policy):
    """Async HTTP: the same as SyncDriver on the event loop's pool."""

    async def send(self, call: HttpCall) -> JSON:
        client = await self.pools.for_loop()
        budget = _Budget(self.settings, self.deadline)

        async def once() -> tuple[httpx.Response, str]:
            response = await client.send(self.build(client, call, budget, stream=call.stream), stream=True)
            body = await _aread(response, budget)
            self.check(response, body, call.path)
            return response, body

        try:
            response: httpx.Response
            body: str
            async with asyncio.timeout(budget.remaining()):  # also bounds the wait for a pooled connection
                response, body = await AsyncRetrying(**self.retry_kwargs(budget))(once)
        except Exception as error:
            failure = self.translate(error, call.path)
        else:
            return self.answer(call, response, body)
        raise failure

    async def run(self, flow: Flow[T]) -> T:
        """Drive a flow to its end, as SyncDriver.run does. The flow's own steps (building a request,
        reading an answer: pure, but as large as the request) run on a worker thread, so the event loop
        only waits on sockets and a large tool schema or history never holds up other requests."""
        answer: JSON | None = None
        failure: Exception | None = None
        call: HttpCall | None = None
        while not (now := await asyncio.to_thread(self.advance, flow, call, answer, failure)).done:
            call, answer, failure = cast(HttpCall, now.call), None, None
            try:
                answer = await self.send(call)
            except Exception as error:  # thrown in outside this block: nothing chained to it
                failure = error
        return cast(T, now.result)

    @asynccontextmanager
    async def aevents(self, call: HttpCall) -> AsyncIterator[AsyncIterator[JSON]]:
        client = await self.pools.for_loop()
        budget = _Budget(self.settings, self.deadline)

        async def opened() -> httpx.Response:
            response = await client.send(self.build(client, call, budget, stream=True), stream=True)
            if response.status_code >= 400 or not is_event_stream(response.headers.get("content-type")):
                body = await _aread(response, budget)
                self.check(response, body, call.path)
                raise self.not_a_stream(response, body, call.path)
            self.pools.answered()
            return response

        failure: Exception | None = None
        try:
            async with asyncio.timeout(budget.remaining()):
                response: httpx.Response = await AsyncRetrying(**self.retry_kwargs(budget))(opened)
        except Exception as error:
            failure = self.translate(error, call.path, streamed=0)
        if failure is not None:
            raise failure
        budget.next_event()
        try:
            yield self._aevents(response.aiter_bytes(), call.path, budget)
        finally:
            await response.aclose()

    async def astream(self, call: HttpCall, machine: StreamMachine[C]) -> AsyncIterator[C]:
        """As `stream`; a large event, or the end of a large reply, is translated on a worker thread (reply
        parsing is linear, but a server's 8 MB line would still hold the event loop for seconds)."""
        received = 0
        async with self.aevents(call) as events:
            try:
                async for event in events:
                    size = text_size(event)
                    received += size
                    for out in await self._translated(machine.on_event, event, call.path, size):
                        yield out
                    if machine.settled:
                        break
            except errors.ReplyOutOfContext:
                machine.cut_off()
        for out in await self._translated(lambda _: machine.on_end(), STREAM_END, call.path, received):
            yield out

    async def _translated(
        self, step: Callable[[JSON], list[C]], event: JSON, path: str, size: int
    ) -> list[C]:
        if size < LARGE_TEXT:
            return self.translated(step, event, path)
        return await asyncio.to_thread(self.translated, step, event, path)

    async def _aevents(self, chunks: AsyncIterator[bytes], path: str, budget: _Budget) -> AsyncIterator[JSON]:
        decoder, failure, streamed = self.decoder(path), None, 0
        try:
            while True:
                # Each wait alone is bounded: a timeout around the generator would also cancel whatever
                # the consumer does between two events.
                async with asyncio.timeout(budget.remaining()):
                    chunk = await anext(chunks, None)
                if chunk is None:
                    break
                for event in decoder.events(chunk):
                    streamed += carries_text(event)
                    yield event
                    budget.next_event()
                if decoder.done:
                    return
            decoder.close()
        except (httpx.HTTPError, LineTooLong, TimeoutError) as error:
            # raised below: nothing chained to it
            failure = self.translate(error, path, streaming=True, streamed=streamed, waited=budget.wait)
        finally:
            self.pools.answered()
        if failure is not None:
            raise failure


def health_status(url: str, timeout: float = 2.0) -> int | None:
    """GET `url` once (a harness polling a server it started); None when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None
