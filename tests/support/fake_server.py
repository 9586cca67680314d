"""The one fake llama server the tests and the benchmarks share: llama-server's wire shapes (chat
completions as JSON and SSE chunks, /props) and two ways to serve them.

* `FaultyServer`: a tiny real HTTP server on 127.0.0.1, in the test's process, that answers like a
  llama.cpp server except for the fault a test puts in (a 503 window, a broken body, a stalled or cut
  stream).
* The instant server, for overhead benchmarks: every answer fixed and costing ~0 ms, in its own process
  (a raw asyncio protocol, uvloop when installed, stdlib otherwise), so that the client is what is
  measured. `python -m tests.support.fake_server [--host 127.0.0.1] [--port 0] [--no-uvloop]` prints
  `STUB_URL http://host:port` once it listens. It answers POST /v1/chat/completions (JSON, or with
  `"stream": true` llama-server's SSE: role chunk, content chunks, finish chunk, usage chunk,
  `data: [DONE]`, chunked, keep-alive), GET /props (SmolLM2's ChatML template, total_slots, n_ctx),
  GET /health, POST /tokenize (a crude word tokenizer; special tokens count as one with parse_special)
  and POST /apply-template (ChatML like SmolLM2's template).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import socket
import sys
import threading
import time
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
        "cut" (the connection drops mid-body), "stall" (nothing more until the test ends), "open" (the
        stream stays open for the caller to write more with `raw`)."""
        self.raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        lines = [e if isinstance(e, str) else f"data: {json.dumps(e)}" for e in events]
        if end == "done":
            lines.append("data: [DONE]")
        for line in lines:
            self.raw(chunked_event(line.encode()))
        if end in ("done", "close"):
            self.raw(b"0\r\n\r\n")
        elif end == "cut":
            self.drop()
        elif end == "stall":
            self.stall()

    def trickle(self, data: bytes, gap: float, sent: list[int] | None = None) -> None:
        """Send `data` one byte every `gap` seconds (each appended to `sent`): every read of the client
        is quick, the whole takes long. Stops when the client goes away."""
        for byte in data:
            try:
                self.raw(bytes([byte]))
            except OSError:
                return
            if sent is not None:
                sent.append(byte)
            time.sleep(gap)

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


def chunked_event(line: bytes) -> bytes:
    """One SSE event as one HTTP chunk."""
    data = line + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def chat_completion(
    text: str, finish_reason: str = "stop", *, usage: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion",
        "created": 1,
        "model": "faulty",
        "choices": [
            {"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": text}}
        ],
        "usage": usage or {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        **extra,
    }


def chunk(
    text: str | None = None, finish_reason: str | None = None, *, role: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A stream chunk: `text` as the content delta (a `role` chunk has content None); with no choice at
    all when `extra` holds the final usage (`choices=[]`)."""
    delta: dict[str, Any] = {"role": role, "content": text} if role else {"content": text}
    if text is None and not role:
        delta = {}
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "faulty",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **extra,
    }


def echo_authorization(exchange: Exchange) -> None:
    """A 401 that echoes the Authorization it got in other spellings: lowercased, JSON with `-` as
    `\\u002d`, and base64, in its headers and its body (what key-masking must see through)."""
    sent = exchange.seen.headers.get("authorization", "")
    escaped = json.dumps({"got": sent}).replace("-", "\\u002d")
    encoded = base64.b64encode(sent.encode()).decode()
    body = json.dumps({"error": {"code": 401, "message": f"bad {sent.lower()} {escaped} {encoded}"}})
    exchange.raw(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        + f"X-Echo-Auth-Lower: {sent.lower()}\r\nX-Echo-Auth-B64: {encoded}\r\n".encode()
        + f"X-Echo-Escaped: {escaped}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body.encode()
    )


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


# -- the instant server (benchmarks) ------------------------------------------------------------

MODEL = "stub-smollm2"
REPLY_PIECES = ("Hello", " there", "!", " How", " can", " I", " help", "?")
REPLY = "".join(REPLY_PIECES)
PROMPT_TOKENS = 31
COMPLETION_TOKENS = len(REPLY_PIECES)
BOS, EOS = "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)
SPECIAL_TOKENS = (BOS, EOS)
_SPECIAL = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
_WORDS = re.compile(r"\w+|[^\w\s]|\s+")

USAGE = {
    "completion_tokens": COMPLETION_TOKENS,
    "prompt_tokens": PROMPT_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    "prompt_tokens_details": {"cached_tokens": 0},
}
TIMINGS = {"cache_n": 0, "prompt_n": PROMPT_TOKENS, "prompt_ms": 0.0, "predicted_n": COMPLETION_TOKENS}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _sse_body() -> bytes:
    """The whole SSE reply, already in chunked transfer encoding (one HTTP chunk per event)."""
    events = [chunk(role="assistant")]
    events += [chunk(piece) for piece in REPLY_PIECES]
    events.append(chunk(finish_reason="stop"))
    events.append({**chunk(), "choices": [], "usage": USAGE, "timings": TIMINGS})
    lines = [b"data: " + _dumps(e) for e in events] + [b"data: [DONE]"]
    return b"".join(chunked_event(line) for line in lines) + b"0\r\n\r\n"


def props() -> dict[str, Any]:
    return {
        "default_generation_settings": {"n_ctx": 8192, "params": {}},
        "total_slots": 4,
        "model_alias": MODEL,
        "model_path": f"/stub/{MODEL}.gguf",
        "chat_template": CHAT_TEMPLATE,
        "chat_template_caps": {"supports_system_role": True, "supports_tools": False},
        "bos_token": BOS,
        "eos_token": EOS,
        "build_info": "stub",
    }


def tokenize(text: str, parse_special: bool) -> list[int]:
    """Crude but deterministic: special tokens are one token each (parse_special), else words,
    punctuation marks and whitespace runs are one token each."""
    count = 0
    pieces = _SPECIAL.split(text) if parse_special else [text]
    count += len(pieces) - 1
    for piece in pieces:
        count += len(_WORDS.findall(piece))
    return [1] * count


def apply_template(messages: list[dict[str, Any]]) -> str:
    parts = []
    if not messages or messages[0].get("role") != "system":
        parts.append(f"{BOS}system\n{DEFAULT_SYSTEM}{EOS}\n")
    for message in messages:
        parts.append(f"{BOS}{message.get('role')}\n{message.get('content') or ''}{EOS}\n")
    parts.append(f"{BOS}assistant\n")
    return "".join(parts)


COMPLETION_JSON = _dumps(chat_completion(REPLY, usage=USAGE, timings=TIMINGS))
COMPLETION_SSE = _sse_body()
HEALTH = b'{"status":"ok"}'
PROPS_BODY = _dumps(props())
NOT_FOUND = b'{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}'

Response = tuple[int, bytes, bool]  # status, body, is already chunked SSE
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


def route(method: str, path: str, body: bytes) -> Response:
    if path in ("/v1/chat/completions", "/chat/completions") and method == "POST":
        # Cheap check first; parse only when "stream" appears at all.
        if b'"stream"' in body and json.loads(body).get("stream") is True:
            return 200, COMPLETION_SSE, True
        return 200, COMPLETION_JSON, False
    if path == "/health":
        return 200, HEALTH, False
    if path == "/props":
        return 200, PROPS_BODY, False
    if path == "/tokenize" and method == "POST":
        data = json.loads(body or b"{}")
        tokens = tokenize(str(data.get("content", "")), bool(data.get("parse_special", True)))
        return 200, _dumps({"tokens": tokens}), False
    if path == "/apply-template" and method == "POST":
        data = json.loads(body or b"{}")
        return 200, _dumps({"prompt": apply_template(list(data.get("messages") or []))}), False
    if path in ("/v1/models", "/models"):
        return 200, _dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}), False
    return 404, NOT_FOUND, False


def render(status: int, body: bytes, sse: bool, keep_alive: bool) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    if sse:
        head = (
            b"HTTP/1.1 200 OK\r\nServer: llama.cpp-stub\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: " + connection + b"\r\n\r\n"
        )
        return head + body
    return (
        b"HTTP/1.1 %d %s\r\nServer: llama.cpp-stub\r\nContent-Type: application/json; charset=utf-8\r\n"
        b"Content-Length: %d\r\nConnection: %s\r\n\r\n"
        % (status, REASONS.get(status, b"Error"), len(body), connection)
    ) + body


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining; request bodies by Content-Length or chunked."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport is no asyncio subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            request = self._next_request()
            if request is None:
                return
            method, path, body, keep_alive = request
            try:
                status, payload, sse = route(method, path, body)
            except (ValueError, TypeError) as error:
                status, payload, sse = 400, _dumps({"error": {"code": 400, "message": str(error)}}), False
            self.transport.write(render(status, payload, sse, keep_alive))
            if not keep_alive:
                self.transport.close()
                self.transport = None

    def _next_request(self) -> tuple[str, str, bytes, bool] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            decoded = self._dechunk(start)
            if decoded is None:
                return None
            body, consumed = decoded
        else:
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < start + length:
                return None
            body, consumed = bytes(self.buffer[start : start + length]), start + length
        del self.buffer[:consumed]
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
        return method, target.split("?", 1)[0], body, keep_alive

    def _dechunk(self, position: int) -> tuple[bytes, int] | None:
        body = bytearray()
        while True:
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(self.buffer[position:line_end]).split(b";")[0], 16)
            data_start = line_end + 2
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    # No trailers: the chunk line's CRLF is followed directly by the final CRLF.
                    if self.buffer[data_start : data_start + 2] == b"\r\n":
                        return bytes(body), data_start + 2
                    return None
                return bytes(body), trailer_end + 4
            if len(self.buffer) < data_start + size + 2:
                return None
            body += self.buffer[data_start : data_start + size]
            position = data_start + size + 2

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, ready: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HttpProtocol, host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()
    ready(f"http://{bound[0]}:{bound[1]}")
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio event loop")
    args = parser.parse_args(argv)

    def ready(url: str) -> None:
        print(f"STUB_URL {url}", flush=True)

    runner: Callable[..., Any] = asyncio.run
    if not args.no_uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
