"""Status and failures -> LiteLLM exceptions: the right class, a short message, no secret."""

from __future__ import annotations

import base64

import httpx
import litellm
import pytest

from litellm_llamafile.core import errors
from litellm_llamafile.core.redaction import Secrets

URL = "http://h:1/v1/chat/completions"
SECRET = "sk-errors-test-secret-77"


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, '{"error": {"message": "bad"}}', litellm.BadRequestError),
        (401, "no", litellm.AuthenticationError),
        (404, "missing", litellm.NotFoundError),
        (429, "slow down", litellm.RateLimitError),
        (500, "boom", litellm.InternalServerError),
        (503, "loading", litellm.ServiceUnavailableError),
        (400, '{"error": {"type": "exceed_context_size_error"}}', litellm.ContextWindowExceededError),
        (500, '{"error": {"message": "Context size has been exceeded."}}', errors.ReplyOutOfContext),
        (418, "teapot", litellm.APIError),
    ],
)
def test_each_status_is_its_litellm_exception(status: int, body: str, kind: type[Exception]) -> None:
    error = errors.from_status(status, body, url=URL, model="m", secret=None)
    assert type(error) is kind
    assert URL in str(error)


def test_an_overflow_is_a_400_whatever_the_server_said() -> None:
    error = errors.from_status(500, "Context size has been exceeded.", url=URL, model="m", secret=None)
    assert isinstance(error, litellm.ContextWindowExceededError)
    assert error.status_code == 400


# What servers and proxies have echoed back: the key as sent, lowercased, uppercased, JSON-escaped,
# URL-escaped, and inside the base64 of a header that carried it.
SPELLINGS = [
    SECRET,
    f"bearer {SECRET.lower()}",
    SECRET.upper(),
    SECRET.replace("-", "\\u002d"),
    SECRET.replace("-", "\\\\u002D"),
    SECRET.replace("-", "%2D").replace("s", "%73"),
    base64.b64encode(f"Bearer {SECRET}".encode()).decode(),
    base64.urlsafe_b64encode(f"x:{SECRET}".encode()).decode(),
]


@pytest.mark.parametrize("echo", SPELLINGS)
def test_the_secret_is_masked_in_the_message_the_body_and_echoed_headers(echo: str) -> None:
    response = httpx.Response(
        401,
        headers={"x-echo-authorization": echo, f"x-{SECRET.lower()}": "1"},
        text=f"bad key {echo}",
        request=httpx.Request("POST", URL, headers={"Authorization": f"Bearer {SECRET}"}),
    )
    secret = Secrets(SECRET)
    error = errors.from_status(401, f"bad key {echo}", url=URL, model="m", secret=secret, response=response)
    public = error.response  # type: ignore[attr-defined]
    shown = [str(error), public.text, *public.headers.keys(), *public.headers.values()]
    assert not any(secret.found_in(text) for text in shown), shown
    assert not any(echo in text or SECRET.lower() in text.lower() for text in shown)
    assert "authorization" not in {k.lower() for k in public.request.headers}


def test_a_long_body_is_quoted_as_a_short_excerpt() -> None:
    error = errors.from_status(500, "x" * 10_000, url=URL, model="m", secret=None)
    assert len(str(error)) < 800


def test_a_server_missing_a_flag_says_which() -> None:
    message = "This server does not support embeddings. Start it with `--embeddings`"
    body = f'{{"error": {{"code": 501, "message": "{message}"}}}}'
    assert "--pooling mean" in str(errors.from_status(501, body, url=URL, model="m", secret=None))


def test_an_image_sent_to_a_text_only_server_says_how_to_start_a_vision_one() -> None:
    body = '{"error": {"code": 500, "message": "image input is not supported - hint: provide the mmproj"}}'
    assert "--mmproj MMPROJ.gguf" in str(errors.from_status(500, body, url=URL, model="m", secret=None))
