"""httpx's async API on an aiohttp connection pool (used by transport.py's async driver)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
import yarl


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _aiohttp_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()  # a body not read to its end closes the connection instead of pooling it


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx's async API on an aiohttp pool. Under concurrency httpcore's async pool spent most of the
    adapter's CPU time assigning requests to connections (bench/README.md); aiohttp's pool, which LiteLLM
    itself uses for its async providers, does not. Connection errors become the httpx ones the rest of
    this module handles."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            # aiohttp keeps every idle connection until it expires, so the per-server limit is the
            # keep-alive one: more requests than that to one server wait here, as they would in its few
            # slots anyway, and a stalled server cannot take the connections its replicas need.
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                limit_per_host=self._limits.max_keepalive_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry,
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
        return httpx.Response(response.status, headers=response.headers, stream=_Body(response))

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
