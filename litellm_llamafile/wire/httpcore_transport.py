"""httpx's blocking transport on an httpcore pool whose every socket read and write keeps the call's deadline.

httpx's timeouts bound each network operation, not a call: a server that sends one header byte every
half second never trips a 2 s read timeout, and httpx's sync client has no total timeout (the async
driver has `asyncio.timeout`). Here a request's read and write timeouts may be `until(deadline)`:
each read and write on its connection then waits at most what is left of the deadline, and one that
starts after it passed fails as a read (write) timeout at once, between two bytes if need be. Pooled
connections work the same, because the deadline travels with the request, not with the connection.
"""

from __future__ import annotations

import time
from typing import Any

import httpcore
import httpx


class Deadline:
    """A point in time a call must end by; a stream moves it on after every event (`rearm`)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    @classmethod
    def copy(cls, other: Deadline) -> Deadline:
        deadline = cls(0)
        deadline.at = other.at
        return deadline

    def left(self) -> float:
        return self.at - time.monotonic()

    def rearm(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds


class _Until(float):
    """A read/write timeout that knows the deadline behind it. httpx and httpcore hand a request's
    timeouts to the network stream unchanged, which is how each read on a pooled connection learns its
    call's deadline; its float value is what any other code (the async transport, a cassette) sees."""

    deadline: Deadline


def until(deadline: Deadline, seconds: float) -> float:
    """A read or write timeout that waits at most until `deadline` on the DeadlineTransport, and
    `seconds` to any other code."""
    bound = _Until(max(seconds, 0.001))
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


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (so everything that hooks it, such as the test cassettes, still does), on a
    pool whose connections keep the deadline of a request's read and write timeouts (`until`)."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx has no parameter for the network backend; its one pool attribute is replaced with the
        # same pool on ours (tests/test_deadlines.py fails if a new httpx stops using it).
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_Backend(),
        )
