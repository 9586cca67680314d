"""A real `redis-server` on a free loopback port, for the tests where several proxies share state."""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from litellm_llamafile.cli.proxy_config import supervised_process
from litellm_llamafile.harness.embedded_server import free_port

INSTALL_HINT = "redis-server is not installed: apt-get update && apt-get install -y redis-server"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _answers_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


@contextlib.contextmanager
def running_redis(work: Path, timeout: float = 30.0) -> Iterator[str]:
    """redis-server on 127.0.0.1 (no persistence); yields its URL and always stops it."""
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    command += ["--dir", str(work)]
    log = work / f"redis-{port}.log"
    with supervised_process(
        command, log=log, ready=lambda: _answers_ping(port), timeout=timeout, what="redis-server"
    ):
        yield f"redis://127.0.0.1:{port}"
