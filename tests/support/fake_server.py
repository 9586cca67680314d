"""`FaultyServer`: a tiny real HTTP server on 127.0.0.1 that answers like a llama.cpp server except for the
fault a test puts in (a 503 window, a broken body, a stalled or cut stream). The one fake llama server the
tests and the benchmarks share."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATH = "/v1/chat/completions"
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endfor %}<|im_start|>assistant\n"
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: bytes


class Exchange:
    """One request to a FaultyServer and the ways to answer it (or not)."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: FaultyServer, seen: Seen) -> None:
        self.handler = handler
        self.server = server
        self.seen = seen

    @property
    def number(self) -> int:
        """1 for the first request to this path, 2 for the second, ..."""
        return sum(1 for s in self.server.requests if s.path == self.seen.path)

    def payload(self) -> Any:
        return json.loads(self.seen.body or b"null")

    def reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(data)}\r\n\r\n"
        self.raw(head.encode() + data)

    def raw(self, data: bytes) -> None:
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def sse(self, events: list[Any], *, end: str = "done") -> None:
        """A chunked event stream. end: "done" ([DONE] and a clean end), "close" (a clean end, no [DONE]),
        "cut" (the connection drops mid-body), "stall" (nothing more until the test ends)."""
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        lines = [e if isinstance(e, str) else f"data: {json.dumps(e)}" for e in events]
        if end == "done":
            lines.append("data: [DONE]")
        for line in lines:
            data = f"{line}\n\n".encode()
            self.raw(b"%x\r\n%s\r\n" % (len(data), data))
        if end in ("done", "close"):
            self.raw(b"0\r\n\r\n")
        elif end == "cut":
            self.drop()
        elif end == "stall":
            self.stall()

    def drop(self) -> None:
        """Close the connection with whatever was sent so far (possibly nothing)."""
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        self.server.release.wait(timeout=60)
        self.drop()


PROPS: dict[str, Any] = {"chat_template": CHATML_TEMPLATE, "total_slots": 1}


def props_reply(exchange: Exchange) -> None:
    exchange.reply(200, exchange.server.props)


def chat_completion(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion",
        "created": 1,
        "model": "faulty",
        "choices": [
            {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def chunk(text: str | None = None, finish_reason: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "faulty",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def answer_chat(text: str) -> Callable[[Exchange], None]:
    """A well-behaved chat endpoint (streaming too) that replies `text`."""

    def chat(exchange: Exchange) -> None:
        if exchange.payload().get("stream"):
            exchange.sse([chunk(text), chunk(finish_reason="stop")])
        else:
            exchange.reply(200, chat_completion(text))

    return chat


class FaultyServer(ThreadingHTTPServer):
    """Answers GET /props like llama-server (ChatML; `props` to say more, e.g. its modalities), and the
    chat endpoint with `chat`. `every` (if given) answers every request instead, /props included.
    Records each request."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # a hundred concurrent clients must not overflow the listen backlog

    def __init__(
        self,
        chat: Callable[[Exchange], None],
        *,
        every: Callable[[Exchange], None] | None = None,
        props: dict[str, Any] | None = None,
    ) -> None:
        self.chat = chat
        self.props = {**PROPS, **(props or {})}
        self.every = every
        self.requests: list[Seen] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _FaultyHandler)
        self.port = int(self.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def chat_requests(self) -> list[Seen]:
        return [s for s in self.requests if s.path == CHAT_PATH]

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class _FaultyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        self.server.record(seen)
        exchange = Exchange(self, self.server, seen)
        try:
            if self.server.every is not None:
                self.server.every(exchange)
            elif self.path == "/props":
                props_reply(exchange)
            elif self.path == CHAT_PATH:
                self.server.chat(exchange)
            else:
                exchange.reply(404, {"error": {"code": 404, "message": "File Not Found"}})
        except OSError:  # the client went away: that is its business
            self.close_connection = True

    do_GET = do_POST = _answer
