"""httpx's blocking API on an httpcore pool whose every socket read and write keeps the call's deadline.

httpx's timeouts bound each network operation, not a call: a server that sends one header byte every
half second never trips a 2 s read timeout, and httpx's sync client has no total timeout (the async
driver has `asyncio.timeout`). Here a request may carry a `Deadline` (the `deadline` request extension):
each read and write on its connection then waits at most what is left of it, and one that starts after
it passed fails as a read (write) timeout at once, between two bytes if need be. Pooled connections
work the same, because the deadline travels with the request, not with the connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

DEADLINE = "deadline"  # the request extension that carries a Deadline


class Deadline:
    """A point in time a call must end by; a stream moves it on after every event (`rearm`)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def rearm(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds


class _Until(float):
    """A read/write timeout that knows the deadline behind it. httpcore hands the request's timeouts to
    the network stream unchanged, which is how each read on a pooled connection learns its call's
    deadline; its float value (what was left when the request was built) is what any other code sees."""

    deadline: Deadline

    @classmethod
    def of(cls, deadline: Deadline) -> _Until:
        bound = cls(max(deadline.left(), 0.0))
        bound.deadline = deadline
        return bound


def _wait(timeout: float | None, failure: type[httpcore.TimeoutException]) -> float | None:
    if not isinstance(timeout, _Until):
        return timeout
    left = timeout.deadline.left()
    if left <= 0:  # never 0 to the socket: that makes it non-blocking, an OSError, not a timeout
        raise failure("the call's deadline passed")
    return left


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _wait(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _wait(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


# Most specific first: each httpcore error becomes the httpx error of the same name.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    # Message only, nothing chained: the httpcore error's context may hold the request and its headers.
    try:
        yield
    except Exception as error:
        mapped = next((kind for source, kind in _ERRORS if isinstance(error, source)), None)
        if mapped is None:
            raise
        message = str(error) or type(error).__name__
    else:
        return
    raise mapped(message) from None


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """What httpx.HTTPTransport does for plain HTTP/1.1 (no proxy: the clients never read the
    environment), with the deadline-keeping network backend."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        extensions = dict(request.extensions)
        deadline = extensions.pop(DEADLINE, None)
        if isinstance(deadline, Deadline):
            until = _Until.of(deadline)
            extensions["timeout"] = {**extensions.get("timeout", {}), "read": until, "write": until}
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
