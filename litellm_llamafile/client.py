"""The only module that speaks HTTP: pooled httpx clients, bounded retries, status -> LiteLLM exception.

Retries happen only where they are safe: while nothing listens (connect errors, a bounded number of
times) and while the server answers 503 because it is still loading (up to `loading_wait` seconds).
A request the server has started answering is never retried.

Failures are raised outside the `except` that caught them: httpx errors hold the request, and with it the
Authorization header, so chaining them (`__context__`) would put the API key inside our exceptions.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import httpx
import yarl
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential,
)

from . import errors
from .settings import LlamafileSettings

JSON = dict[str, Any]
# llama-server and llamafile (cpp-httplib) close a connection idle for 5 s. Reusing one at that instant
# fails as "Server disconnected", which for a POST is not safe to retry, so ours expire first.
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=4)
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)


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


class _AiohttpBody(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _aiohttp_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()  # a body not read to its end closes the connection instead of pooling it


class _AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's async API on an aiohttp pool. Under concurrency httpcore's async pool spent most of the
    adapter's CPU time assigning requests to connections (bench/README.md); aiohttp's pool, which LiteLLM
    itself uses for its async providers, does not. Connection errors become the httpx ones the rest of
    this module handles."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            # aiohttp keeps every idle connection until it expires, so the per-server limit is the
            # keep-alive one: more requests than that to one server wait here, as they would in its few
            # slots anyway, and a stalled server cannot take the connections its replicas need.
            connector = aiohttp.TCPConnector(
                limit=POOL_LIMITS.max_connections or 0,
                limit_per_host=POOL_LIMITS.max_keepalive_connections or 0,
                keepalive_timeout=POOL_LIMITS.keepalive_expiry,
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False)
        timeout = request.extensions.get("timeout", {})
        with _aiohttp_errors():
            response = await self._session.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers,
                data=await request.aread() or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.get("connect"), sock_read=timeout.get("read")
                ),
            )
        return httpx.Response(response.status, headers=response.headers, stream=_AiohttpBody(response))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextmanager
def _aiohttp_errors() -> Iterator[None]:
    # The httpx error carries the message only; like every httpx error here it is turned into a LiteLLM
    # exception without chaining (see the module docstring), so the aiohttp one, whose request holds the
    # Authorization header, never reaches a caller.
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        mapped: httpx.TransportError = httpx.ConnectTimeout(str(error) or "connect timeout")
    except (TimeoutError, aiohttp.ServerTimeoutError) as error:
        mapped = httpx.ReadTimeout(str(error) or "read timeout")
    except aiohttp.ClientConnectorError as error:
        mapped = httpx.ConnectError(str(error))
    except aiohttp.ServerDisconnectedError as error:
        mapped = httpx.RemoteProtocolError(str(error) or "Server disconnected")
    except aiohttp.ClientError as error:
        mapped = httpx.ReadError(str(error) or type(error).__name__)
    else:
        return
    raise mapped from None


async def _close_at_loop_shutdown(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


class _Pools:
    """One sync client per process and one async client per event loop (httpx async clients are
    bound to the loop that created them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        # loop -> (its client, the async generator that closes that client when the loop shuts down)
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    def sync(self) -> httpx.Client:
        with self._lock:
            if self._sync is None or self._sync.is_closed:
                self._sync = httpx.Client(limits=POOL_LIMITS, trust_env=False)
            return self._sync

    async def for_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            self._forget_closed_loops()
            entry = self._async.get(loop)
            if entry is not None and not entry[0].is_closed:
                return entry[0]
            client = httpx.AsyncClient(transport=_AiohttpTransport(), trust_env=False)
            closer = _close_at_loop_shutdown(client)
            self._async[loop] = (client, closer)
        # Started, the closer is an unfinished async generator of this loop, and asyncio.run() / Runner
        # finalize those (loop.shutdown_asyncgens) while the loop still runs: the client's sockets are
        # closed before its loop is. Without it every asyncio.run() left its keep-alive sockets open (the
        # client's transports keep the loop alive, so neither is ever collected).
        await closer.__anext__()
        return client

    def _forget_closed_loops(self) -> None:
        # A loop closed without shutdown_asyncgens cannot close its client any more; dropping our reference
        # at least lets the garbage collector reclaim the client and its sockets.
        for loop in [loop for loop in self._async if loop.is_closed()]:
            del self._async[loop]

    def close(self) -> None:
        with self._lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async.pop(loop, None)
        if entry is not None:
            await entry[1].aclose()  # its `finally` closes the client


def _is_event_stream(response: httpx.Response) -> bool:
    """Whether a streamed answer is server-sent events. Read as events, anything else (an HTML error page,
    a whole JSON reply) would be skipped line by line and end as a reply with nothing in it."""
    content_type = response.headers.get("content-type")
    return content_type is None or content_type.lower().startswith("text/event-stream")


def _body_text(response: httpx.Response, received: bytes) -> str:
    return received.decode(response.encoding or "utf-8", errors="replace")


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


def _read(response: httpx.Response, chunks: Iterable[bytes]) -> str:
    """The body of a response opened with stream=True."""
    received = bytearray()
    with _cut_off_if_broken(response, received):
        for chunk in chunks:
            received += chunk
    return _body_text(response, bytes(received))


async def _aread(response: httpx.Response, chunks: AsyncIterator[bytes]) -> str:
    received = bytearray()
    with _cut_off_if_broken(response, received):
        async for chunk in chunks:
            received += chunk
    return _body_text(response, bytes(received))


POOLS = _Pools()
atexit.register(POOLS.close)


class ServerClient:
    """HTTP to one llama.cpp-family server for one call (settings + model name for error messages)."""

    def __init__(self, settings: LlamafileSettings, model: str = "") -> None:
        self.settings = settings
        self.model = model
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        self._timeout = httpx.Timeout(settings.timeout, connect=settings.connect_timeout)

    def url(self, path: str) -> str:
        return f"{self.settings.api_base}{path}"

    # -- retry policy -----------------------------------------------------------------------------

    def _stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Loading):
            return (state.seconds_since_start or 0.0) >= self.settings.loading_wait
        return state.attempt_number > self.settings.connect_retries

    def _retry_kwargs(self) -> dict[str, Any]:
        return {
            "retry": retry_if_exception_type((*_CONNECT_ERRORS, _Loading)),
            "wait": wait_exponential(multiplier=0.25, max=2.0),
            "stop": self._stop,
            "reraise": True,
        }

    # -- error mapping ----------------------------------------------------------------------------

    def _check(self, response: httpx.Response, body: str) -> None:
        if response.status_code == 503:
            raise _Loading(response, body)
        if response.status_code >= 400:
            raise errors.from_status(
                response.status_code,
                body,
                url=str(response.request.url),
                model=self.model,
                secret=self._secret,
                response=response,
            )

    def _translate(self, error: BaseException, url: str, *, streaming: bool = False) -> Exception:
        if isinstance(error, _CutOff):
            reason = errors.mask(error.reason, self._secret)
            return errors.bad_body(
                url,
                self.model,
                error.response.status_code,
                _body_text(error.response, error.received),
                self._secret,
                f"a body cut off after {len(error.received)} bytes ({reason})",
            )
        if isinstance(error, _Loading):
            return errors.from_status(
                503,
                error.body or "server still loading",
                url=url,
                model=self.model,
                secret=self._secret,
                response=error.response,
            )
        if isinstance(error, _CONNECT_ERRORS):
            return errors.connection_failed(
                url, self.model, errors.mask(str(error) or type(error).__name__, self._secret)
            )
        if isinstance(error, httpx.TimeoutException):
            return errors.timed_out(url, self.model, self.settings.timeout)
        if isinstance(error, httpx.HTTPError):
            broken = errors.stream_broken if streaming else errors.connection_broken
            return broken(url, self.model, errors.mask(str(error) or type(error).__name__, self._secret))
        return error if isinstance(error, Exception) else RuntimeError(str(error))

    def _decode(self, response: httpx.Response, body: str) -> JSON:
        data = _json_or_missing(body)
        if data is _MISSING:
            raise errors.bad_body(
                str(response.request.url),
                self.model,
                response.status_code,
                body,
                self._secret,
                "a body that is not JSON",
            )
        if not isinstance(data, dict):
            raise errors.bad_body(
                str(response.request.url),
                self.model,
                response.status_code,
                body,
                self._secret,
                "JSON that is not an object",
            )
        return data

    def _not_a_stream(self, response: httpx.Response, body: str) -> Exception:
        return errors.bad_body(
            str(response.request.url),
            self.model,
            response.status_code,
            body,
            self._secret,
            "a body that is not an event stream",
        )

    def _headers(self, *, stream: bool = False) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self.settings.auth_headers()}
        if stream:
            # llama-server closes the connection after a streamed reply although it says Keep-Alive; a
            # request sent on it before the close arrives fails ("Server disconnected"), and a POST is not
            # safe to retry. So a stream's connection never goes back to the pool.
            headers["Connection"] = "close"
        return headers

    # -- sync -------------------------------------------------------------------------------------

    def request_json(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> JSON:
        url = self.url(path)
        client = POOLS.sync()

        def once() -> tuple[httpx.Response, str]:
            request = client.build_request(
                method, url, json=payload, headers=self._headers(), timeout=self._timeout
            )
            response = client.send(request, stream=True)
            try:
                body = _read(response, response.iter_bytes())
            finally:
                response.close()
            self._check(response, body)
            return response, body

        try:
            response, body = Retrying(**self._retry_kwargs())(once)
        except Exception as error:
            failure = self._translate(error, url)
        else:
            return self._decode(response, body)
        raise failure

    @contextmanager
    def stream_events(self, path: str, payload: Mapping[str, Any]) -> Iterator[Iterator[JSON]]:
        """Open an SSE stream (retrying only until the server answers) and yield its JSON events."""
        url = self.url(path)
        client = POOLS.sync()

        def opened() -> httpx.Response:
            request = client.build_request(
                "POST", url, json=payload, headers=self._headers(stream=True), timeout=self._timeout
            )
            response = client.send(request, stream=True)
            if response.status_code >= 400 or not _is_event_stream(response):
                try:
                    body = _read(response, response.iter_bytes())
                finally:
                    response.close()
                self._check(response, body)
                raise self._not_a_stream(response, body)
            return response

        failure: Exception | None = None
        try:
            response = Retrying(**self._retry_kwargs())(opened)
        except Exception as error:
            failure = self._translate(error, url)
        if failure is not None:
            raise failure
        try:
            yield self._events(response.iter_lines(), url)
        finally:
            response.close()

    def _events(self, lines: Iterator[str], url: str) -> Iterator[JSON]:
        failure: Exception | None = None
        try:
            for line in lines:
                event = self._event(line, url)
                if event is _DONE:
                    return
                if event is not None:
                    yield event  # type: ignore[misc]
        except httpx.HTTPError as error:
            failure = self._translate(error, url, streaming=True)
        if failure is not None:
            raise failure

    # -- async ------------------------------------------------------------------------------------

    async def arequest_json(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> JSON:
        url = self.url(path)
        client = await POOLS.for_loop()

        async def once() -> tuple[httpx.Response, str]:
            request = client.build_request(
                method, url, json=payload, headers=self._headers(), timeout=self._timeout
            )
            response = await client.send(request, stream=True)
            try:
                body = await _aread(response, response.aiter_bytes())
            finally:
                await response.aclose()
            self._check(response, body)
            return response, body

        try:
            response: httpx.Response
            body: str
            response, body = await AsyncRetrying(**self._retry_kwargs())(once)
        except Exception as error:
            failure = self._translate(error, url)
        else:
            return self._decode(response, body)
        raise failure

    @asynccontextmanager
    async def astream_events(
        self, path: str, payload: Mapping[str, Any]
    ) -> AsyncIterator[AsyncIterator[JSON]]:
        url = self.url(path)
        client = await POOLS.for_loop()

        async def opened() -> httpx.Response:
            request = client.build_request(
                "POST", url, json=payload, headers=self._headers(stream=True), timeout=self._timeout
            )
            response = await client.send(request, stream=True)
            if response.status_code >= 400 or not _is_event_stream(response):
                try:
                    body = await _aread(response, response.aiter_bytes())
                finally:
                    await response.aclose()
                self._check(response, body)
                raise self._not_a_stream(response, body)
            return response

        failure: Exception | None = None
        try:
            response: httpx.Response = await AsyncRetrying(**self._retry_kwargs())(opened)
        except Exception as error:
            failure = self._translate(error, url)
        if failure is not None:
            raise failure
        try:
            yield self._aevents(response.aiter_lines(), url)
        finally:
            await response.aclose()

    async def _aevents(self, lines: AsyncIterator[str], url: str) -> AsyncIterator[JSON]:
        failure: Exception | None = None
        try:
            async for line in lines:
                event = self._event(line, url)
                if event is _DONE:
                    return
                if event is not None:
                    yield event  # type: ignore[misc]
        except httpx.HTTPError as error:
            failure = self._translate(error, url, streaming=True)
        if failure is not None:
            raise failure

    # -- SSE --------------------------------------------------------------------------------------

    def _event(self, line: str, url: str) -> JSON | object | None:
        """One SSE line -> a JSON event, _DONE, or None (comments, blank lines, other fields).

        llama-server reports a failure mid-stream (e.g. "Context size has been exceeded.") as an `error:`
        field holding the bare error object; other servers send `data: {"error": {...}}`."""
        field, _, data = line.partition(":")
        data = data.strip()
        if field not in ("data", "error") or not data:
            return None
        if data == "[DONE]":
            return _DONE
        event = _json_or_missing(data)
        if event is _MISSING:
            raise errors.bad_body(url, self.model, 200, data, self._secret, "a stream event that is not JSON")
        if not isinstance(event, dict):
            raise errors.bad_body(
                url, self.model, 200, data, self._secret, "a stream event that is not an object"
            )
        if field == "error" and "error" not in event:
            event = {"error": event}
        if "error" in event:
            error = event["error"]
            status = error.get("code", 500) if isinstance(error, dict) else 500
            raise errors.from_status(
                status if isinstance(status, int) else 500,
                json.dumps(event),
                url=url,
                model=self.model,
                secret=self._secret,
            )
        return event


_DONE = object()
_MISSING = object()


def _json_or_missing(text: str) -> object:
    """json.loads, or _MISSING for text that is not JSON (or nests deeper than Python's recursion limit).
    Callers raise outside `except`: the decoder's error holds the whole body, which must not be chained."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _MISSING
