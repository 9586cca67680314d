"""An instant stub llama.cpp server for overhead benchmarks: every answer is fixed and costs ~0 ms.

    python bench/stub_server.py [--host 127.0.0.1] [--port 0] [--no-uvloop]

Prints `STUB_URL http://host:port` on stdout once it listens. Speaks what the adapter and LiteLLM use:

* POST /v1/chat/completions (and /chat/completions): a fixed reply as JSON, or with `"stream": true` as
  llama-server's SSE (role chunk, content chunks, finish chunk, a final usage chunk, `data: [DONE]`),
  chunked transfer encoding, keep-alive;
* GET /props (SmolLM2's ChatML chat_template, bos/eos tokens, total_slots, n_ctx), GET /health;
* POST /tokenize (a crude word/punctuation tokenizer; special tokens count as one with parse_special)
  and POST /apply-template (ChatML rendering like SmolLM2's template).

A raw asyncio protocol (uvloop when installed), no framework: its own cost must stay far below the
client's, so the client is what the benchmark measures. Stdlib only (plus optional uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Callable
from typing import Any

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

ID = "chatcmpl-stub0000000000000000000000000"
CREATED = 1_700_000_000
USAGE = {
    "completion_tokens": COMPLETION_TOKENS,
    "prompt_tokens": PROMPT_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    "prompt_tokens_details": {"cached_tokens": 0},
}
TIMINGS = {"cache_n": 0, "prompt_n": PROMPT_TOKENS, "prompt_ms": 0.0, "predicted_n": COMPLETION_TOKENS}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _completion_body() -> bytes:
    return _dumps(
        {
            "choices": [
                {"finish_reason": "stop", "index": 0, "message": {"role": "assistant", "content": REPLY}}
            ],
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "stub",
            "object": "chat.completion",
            "usage": USAGE,
            "id": ID,
            "timings": TIMINGS,
        }
    )


def _chunk(choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "choices": choices,
        "created": CREATED,
        "id": ID,
        "model": MODEL,
        "system_fingerprint": "stub",
        "object": "chat.completion.chunk",
        **extra,
    }


def _sse_body() -> bytes:
    """The whole SSE reply, already in chunked transfer encoding (one HTTP chunk per event)."""
    events = [_chunk([{"finish_reason": None, "index": 0, "delta": {"role": "assistant", "content": None}}])]
    events += [_chunk([{"finish_reason": None, "index": 0, "delta": {"content": p}}]) for p in REPLY_PIECES]
    events.append(_chunk([{"finish_reason": "stop", "index": 0, "delta": {}}]))
    events.append(_chunk([], usage=USAGE, timings=TIMINGS))
    out = bytearray()
    for data in [*(_dumps(e) for e in events), b"[DONE]"]:
        piece = b"data: " + data + b"\n\n"
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    out += b"0\r\n\r\n"
    return bytes(out)


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


# -- HTTP ----------------------------------------------------------------------------------------------

COMPLETION_JSON = _completion_body()
COMPLETION_SSE = _sse_body()
HEALTH = b'{"status":"ok"}'
PROPS = _dumps(props())
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
        return 200, PROPS, False
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
        self.transport = transport  # type: ignore[assignment]  (uvloop's transport is no asyncio subclass)

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
