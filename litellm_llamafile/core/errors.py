"""What each failure becomes: LiteLLM's exception classes, so callers, the Router and fallbacks can act.

Messages name the server URL and the status, quote at most a short excerpt of the body, and never
contain the API key or the password of api_base in any spelling (callers pass the call's `Secrets`, so
they are masked even if a server echoes them lowercased, escaped or in base64).

Two boundaries make every other exception a LiteLLM one: `refuses_input` around the code that builds a
request from the caller's input (anything it raises is the caller's BadRequestError, never a 500 the
Router retries), and `BadAnswer` / `unreadable_answer` for server answers the pure readers cannot read
(the drivers turn those, and anything else raised while reading an answer, into an APIError quoting it).
"""

from __future__ import annotations

import functools
import json
import reprlib
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import httpx
import openai
from litellm.exceptions import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    Timeout,
    UnprocessableEntityError,
)

from .redaction import Secrets

PROVIDER = "llamafile"
EXCERPT_CHARS = 300
START_HINT = (
    "Start one with `python -m litellm_llamafile.embedded_server` or `./your-model.llamafile --server`, "
    "or point LLAMAFILE_API_BASE (or api_base=) at a running one."
)

# Phrases llama.cpp-family servers use when the prompt (or prompt + reply) does not fit the context.
_CONTEXT_MARKERS = ("exceed_context_size", "context size has been exceeded", "exceeds the available context")


# What to do about a server answer, by a phrase in it: the server runs without what the call needs.
# llama-server's words when its reader for the chat template's reply format refuses a reply.
FORMAT_REFUSED = "does not match the expected"
_HINTS = (
    (
        "does not support embeddings",
        "start llama-server with --embeddings --pooling mean (llamafile: --embedding)",
    ),
    ("pooling type 'none'", "start llama-server with --pooling mean (or cls, last) to serve /v1/embeddings"),
    ("requires --jinja", "start llama-server with --jinja"),
    # A server that does not advertise vision (classic llamafile) but was sent an image part.
    (
        "image input is not supported",
        "start a vision model with its projector: llama-server --mmproj MMPROJ.gguf",
    ),
    (
        FORMAT_REFUSED,
        "llama-server could not read the reply in the format its chat template declares: the model "
        "does not write that format. Non-streamed calls are sent again through /v1/completions, where "
        "the server reads nothing; for a stream, start llama-server with the model's own template",
    ),
)


class ReplyFormatRefused(InternalServerError):
    """llama-server's own reader for the chat template's reply format refused the reply (HTTP 500 "The
    model produced output that does not match the expected ... format"): the model did not write the
    format its template declares (SmolLM2 under Kimi K3's template). The adapter reads replies itself,
    so the chat flow asks once more without that reader (chat.py); a caller that still gets this error
    sees an InternalServerError."""


def hint_for(body: str) -> str:
    lowered = body.lower()
    return next((f" ({hint})" for phrase, hint in _HINTS if phrase in lowered), "")


class ReplyOutOfContext(ContextWindowExceededError):
    """The reply, not the prompt, ran out of the server's context (llama-server's 500 "Context size has
    been exceeded.": its slots share one KV cache, which concurrent long replies can fill). What was
    generated is kept where it can be (finish_reason "length"); a caller that still gets this error sees a
    ContextWindowExceededError."""


def mask(text: str, secret: Secrets | None) -> str:
    return secret.mask(text) if secret else text


def excerpt(body: str, secret: Secrets | None = None) -> str:
    body = mask(body, secret).strip()
    return body if len(body) <= EXCERPT_CHARS else body[:EXCERPT_CHARS] + "…"


def invalid_request(message: str, model: str = "") -> BadRequestError:
    error: BadRequestError = BadRequestError(message=message, model=model, llm_provider=PROVIDER)
    return error


def is_litellm(error: BaseException) -> bool:
    """A LiteLLM exception (they all derive from the OpenAI SDK's): callers and the Router know it."""
    return isinstance(error, openai.OpenAIError)


def describe(error: BaseException) -> str:
    """An unexpected exception in a few words for a message (never its traceback)."""
    if isinstance(error, RecursionError):
        return "nested too deeply"
    text = str(error).strip()
    text = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


P = ParamSpec("P")
R = TypeVar("R")


def refuses_input(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function that turns the caller's input into a request: any exception it raises that is
    not already a LiteLLM one (a RecursionError from deep nesting, an OverflowError from an infinite
    bound, a TypeError from a value of the wrong type) becomes a BadRequestError naming `what` was
    refused. LiteLLM's own errors, a BadRequestError naming a budget included, pass unchanged."""

    def decorate(build: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(build)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return build(*args, **kwargs)
            except Exception as error:
                if is_litellm(error):
                    raise
                refused = invalid_request(f"{what} could not be used: {describe(error)}")
            raise refused  # outside the except: nothing chained to it

        return guarded

    return decorate


class BadAnswer(Exception):
    """A server answer of a shape the pure readers cannot use: `why`, and the `part` of the answer that
    is wrong. Not a LiteLLM exception on purpose: the drivers, which know the URL, the whole answer and
    the call's secrets, turn it into the caller's APIError (`unreadable_answer`)."""

    def __init__(self, why: str, part: object) -> None:
        super().__init__(why)
        self.why = why
        self.part = part


def answer_text(received: object) -> str:
    """What a server sent, as text for a message (JSON when it can be, a bounded repr otherwise)."""
    if isinstance(received, str):
        return received
    try:
        return json.dumps(received, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        return reprlib.repr(received)


def unreadable_answer(
    url: str, model: str, secret: Secrets | None, why: str, received: object, part: object = None
) -> APIError:
    """An answer the adapter cannot read: an APIError (status 200) quoting the `part` of it that is
    wrong (the whole of it by default), masked; `body` keeps all of what was `received` (masked) for
    whoever handles the error."""
    text = mask(answer_text(received), secret)
    quoted = text if part is None else mask(answer_text(part), secret)
    return APIError(
        status_code=200,
        message=f"{url} answered with {why}: {excerpt(quoted)!r}",
        model=model,
        llm_provider=PROVIDER,
        body=text,
    )


def server_message(body: str) -> str:
    """The human part of an error body: `error.message` of OpenAI-shaped JSON, else the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return body


def is_context_overflow(body: str) -> bool:
    lowered = body.lower()
    return any(marker in lowered for marker in _CONTEXT_MARKERS)


def from_status(
    status: int,
    body: str,
    *,
    url: str,
    model: str,
    secret: Secrets | None,
    response: httpx.Response | None = None,
) -> Exception:
    """A non-2xx answer -> the LiteLLM exception for it."""
    detail = excerpt(server_message(body), secret)
    message = f"{url} answered HTTP {status}: {detail}"
    if status == 401:
        message += " (the server wants its --api-key: pass api_key= or set LLAMAFILE_API_KEY)"
    message += hint_for(body)
    if status >= 500 and "context size has been exceeded" in body.lower():
        kind: Any = ReplyOutOfContext
    elif status >= 500 and FORMAT_REFUSED in body.lower():
        kind = ReplyFormatRefused
    elif is_context_overflow(body) or status == 413:
        kind = ContextWindowExceededError
    elif status >= 500 and status != 503:
        kind = InternalServerError
    else:
        kind = _BY_STATUS.get(status, APIError)
    if kind is APIError:
        return _as_exception(
            APIError(status_code=status, message=message, model=model, llm_provider=PROVIDER)
        )
    if kind is Timeout:
        return _as_exception(Timeout(message=message, model=model, llm_provider=PROVIDER))
    # The exception's status_code comes from this response. An overflow is a 400 even when llama-server
    # says 500 ("Context size has been exceeded."): the same request cannot fit, so it is not retried, and
    # LiteLLM's stream wrapper raises it as is instead of as a MidStreamFallbackError.
    response_status = 400 if issubclass(kind, ContextWindowExceededError) else status
    public = _without_credentials(response, response_status, url, mask(body, secret), secret)
    return _as_exception(kind(message=message, model=model, llm_provider=PROVIDER, response=public))


# Describe the bytes as sent; the copy below holds them decoded.
_ENCODING_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding"})


def _without_credentials(
    response: httpx.Response | None, status: int, url: str, body: str, secret: Secrets | None
) -> httpx.Response:
    """The answer as an exception may keep it: its request carries no headers (the original's holds the
    Authorization header, i.e. the API key), its body is the masked text, and a header that echoes a
    secret in any spelling, in its name or its value (LiteLLM's proxy forwards provider headers to
    clients as `llm_provider-*`), is masked too."""
    method = response.request.method if response is not None else "POST"
    headers = (
        [
            (mask(k, secret), mask(v, secret))
            for k, v in response.headers.items()
            if k.lower() not in _ENCODING_HEADERS
        ]
        if response is not None
        else []
    )
    return httpx.Response(status, headers=headers, text=body, request=httpx.Request(method, url))


_BY_STATUS: dict[int, Any] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: Timeout,
    422: UnprocessableEntityError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def _as_exception(error: object) -> Exception:
    # LiteLLM's exception constructors are untyped; this keeps the package's own signatures exact.
    assert isinstance(error, Exception)
    return error


def _connection_error(url: str, model: str, message: str) -> APIConnectionError:
    return APIConnectionError(
        message=message, model=model, llm_provider=PROVIDER, request=httpx.Request("POST", url)
    )


def connection_failed(url: str, model: str, reason: str) -> APIConnectionError:
    return _connection_error(url, model, f"no llamafile server answered at {url} ({reason}). {START_HINT}")


def timed_out(url: str, model: str, seconds: float | None) -> Timeout:
    limit = f" after {seconds:g}s" if seconds else ""
    return Timeout(message=f"{url} did not answer{limit}", model=model, llm_provider=PROVIDER)


def timed_out_generating(url: str, model: str, seconds: float, streamed: int | None) -> Timeout:
    """A reply request that ran out of time while the server was still at it. `streamed`: the tokens a
    stream had delivered (llama-server sends one event per token), None for a non-streamed request, whose
    reply arrives whole, so how far it got is unknown. `seconds`: the wait that ran out (a non-streamed
    call's deadline; in a stream, the wait for its next event, to a tenth of a second)."""
    seconds = round(seconds, 1)
    if streamed is None:
        waited = f"no reply within {seconds:g}s (timeout=)"
        so_far = "the reply so far had an unknown number of tokens (a non-streamed reply arrives whole)"
        working = "still generating (or still queued behind other requests)"
    elif streamed == 0:
        waited = f"no token within {seconds:g}s (timeout=)"
        so_far = "the reply so far had 0 tokens"
        working = "still reading the prompt (or the request was still queued)"
    else:
        waited = f"no new token for {seconds:g}s (timeout= bounds each wait in a stream)"
        so_far = f"the reply so far had {streamed} tokens and no end"
        working = "still generating"
    return Timeout(
        message=f"{url} timed out: {waited}; the server was {working}; {so_far}; set max_tokens to bound it",
        model=model,
        llm_provider=PROVIDER,
    )


def too_large(url: str, model: str, why: str) -> APIError:
    return APIError(
        status_code=200,
        message=f"{url} answered with {why} (raise llamafile_max_body_bytes / llamafile_max_line_bytes)",
        model=model,
        llm_provider=PROVIDER,
    )


def bad_body(url: str, model: str, status: int, body: str, secret: Secrets | None, why: str) -> APIError:
    return APIError(
        status_code=status,
        message=f"{url} answered HTTP {status} with {why}: {excerpt(body, secret)!r}",
        model=model,
        llm_provider=PROVIDER,
    )


def connection_broken(url: str, model: str, reason: str) -> APIConnectionError:
    return _connection_error(url, model, f"the connection to {url} broke before the reply arrived ({reason})")


def stream_broken(url: str, model: str, reason: str) -> APIConnectionError:
    return _connection_error(
        url, model, f"the stream from {url} ended before the reply was complete ({reason})"
    )
