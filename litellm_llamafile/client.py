"""The only module that speaks HTTP: pooled httpx clients, bounded retries, status -> LiteLLM exception.

Retries happen only where they are safe: while nothing listens (connect errors, a bounded number of
times) and while the server answers 503 because it is still loading (up to `loading_wait` seconds).
A request the server has started answering is never retried.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
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
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)


class _Loading(Exception):
    """The server answered 503 (model still loading): worth waiting for."""

    def __init__(self, response: httpx.Response, body: str) -> None:
        super().__init__("server loading")
        self.response = response
        self.body = body


class _Pools:
    """One sync client per process and one async client per event loop (httpx async clients are
    bound to the loop that created them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: httpx.Client | None = None
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def sync(self) -> httpx.Client:
        with self._lock:
            if self._sync is None or self._sync.is_closed:
                self._sync = httpx.Client(limits=POOL_LIMITS, trust_env=False)
            return self._sync

    def for_loop(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._async.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(limits=POOL_LIMITS, trust_env=False)
                self._async[loop] = client
            return client

    def close(self) -> None:
        with self._lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._async.pop(loop, None)
        if client is not None:
            await client.aclose()


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

    def _translate(self, error: BaseException, url: str) -> Exception:
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
            return errors.stream_broken(
                url, self.model, errors.mask(str(error) or type(error).__name__, self._secret)
            )
        return error if isinstance(error, Exception) else RuntimeError(str(error))

    def _decode(self, response: httpx.Response, body: str) -> JSON:
        try:
            data = json.loads(body)
        except ValueError:
            raise errors.bad_body(
                str(response.request.url),
                self.model,
                response.status_code,
                body,
                self._secret,
                "a body that is not JSON",
            ) from None
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

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **self.settings.auth_headers()}

    # -- sync -------------------------------------------------------------------------------------

    def request_json(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> JSON:
        url = self.url(path)
        client = POOLS.sync()

        def once() -> tuple[httpx.Response, str]:
            response = client.request(
                method, url, json=payload, headers=self._headers(), timeout=self._timeout
            )
            body = response.text
            self._check(response, body)
            return response, body

        try:
            response, body = Retrying(**self._retry_kwargs())(once)
        except Exception as error:
            raise self._translate(error, url) from None
        return self._decode(response, body)

    @contextmanager
    def stream_events(self, path: str, payload: Mapping[str, Any]) -> Iterator[Iterator[JSON]]:
        """Open an SSE stream (retrying only until the server answers) and yield its JSON events."""
        url = self.url(path)
        client = POOLS.sync()

        def opened() -> httpx.Response:
            request = client.build_request(
                "POST", url, json=payload, headers=self._headers(), timeout=self._timeout
            )
            response = client.send(request, stream=True)
            if response.status_code >= 400:
                body = response.read().decode("utf-8", "replace")
                response.close()
                self._check(response, body)
            return response

        try:
            response = Retrying(**self._retry_kwargs())(opened)
        except Exception as error:
            raise self._translate(error, url) from None
        try:
            yield self._events(response.iter_lines(), url)
        finally:
            response.close()

    def _events(self, lines: Iterator[str], url: str) -> Iterator[JSON]:
        try:
            for line in lines:
                event = self._event(line, url)
                if event is _DONE:
                    return
                if event is not None:
                    yield event  # type: ignore[misc]
        except httpx.HTTPError as error:
            raise self._translate(error, url) from None

    # -- async ------------------------------------------------------------------------------------

    async def arequest_json(self, method: str, path: str, payload: Mapping[str, Any] | None = None) -> JSON:
        url = self.url(path)
        client = POOLS.for_loop()

        async def once() -> tuple[httpx.Response, str]:
            response = await client.request(
                method, url, json=payload, headers=self._headers(), timeout=self._timeout
            )
            body = response.text
            self._check(response, body)
            return response, body

        try:
            response: httpx.Response
            body: str
            response, body = await AsyncRetrying(**self._retry_kwargs())(once)
        except Exception as error:
            raise self._translate(error, url) from None
        return self._decode(response, body)

    @asynccontextmanager
    async def astream_events(
        self, path: str, payload: Mapping[str, Any]
    ) -> AsyncIterator[AsyncIterator[JSON]]:
        url = self.url(path)
        client = POOLS.for_loop()

        async def opened() -> httpx.Response:
            request = client.build_request(
                "POST", url, json=payload, headers=self._headers(), timeout=self._timeout
            )
            response = await client.send(request, stream=True)
            if response.status_code >= 400:
                body = (await response.aread()).decode("utf-8", "replace")
                await response.aclose()
                self._check(response, body)
            return response

        try:
            response: httpx.Response = await AsyncRetrying(**self._retry_kwargs())(opened)
        except Exception as error:
            raise self._translate(error, url) from None
        try:
            yield self._aevents(response.aiter_lines(), url)
        finally:
            await response.aclose()

    async def _aevents(self, lines: AsyncIterator[str], url: str) -> AsyncIterator[JSON]:
        try:
            async for line in lines:
                event = self._event(line, url)
                if event is _DONE:
                    return
                if event is not None:
                    yield event  # type: ignore[misc]
        except httpx.HTTPError as error:
            raise self._translate(error, url) from None

    # -- SSE --------------------------------------------------------------------------------------

    def _event(self, line: str, url: str) -> JSON | object | None:
        """One SSE line -> a JSON event, _DONE, or None (comments, blank lines, other fields)."""
        if line.startswith("error:"):
            line = "data:" + line[len("error:") :]
        if not line.startswith("data:"):
            return None
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return _DONE
        try:
            event = json.loads(data)
        except ValueError:
            raise errors.bad_body(
                url, self.model, 200, data, self._secret, "a stream event that is not JSON"
            ) from None
        if not isinstance(event, dict):
            raise errors.bad_body(
                url, self.model, 200, data, self._secret, "a stream event that is not an object"
            )
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
