"""Connection and behaviour settings: one pydantic model, resolved per call.

Precedence for every field: the call's own argument, then the environment, then the default.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from .errors import invalid_request

DEFAULT_API_BASE = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_SECONDS = 600.0

# Per-call options a user may pass to litellm.completion (or put in a proxy model's litellm_params).
# LiteLLM hands unknown kwargs of custom providers to the handler in `optional_params`.
CALL_OPTION_PREFIX = "llamafile_"

# Where requests go and what they carry are never `llamafile_*` options: LiteLLM's proxy guards its own
# `api_base`/`api_key` parameters against clients, but not our options, so a client could otherwise send
# the deployment's key to a URL of its choice. They come from api_base=/api_key= or the environment.
CONNECTION_FIELDS = frozenset({"api_base", "api_key"})
# Options a proxy client may set per request (behaviour only, no connection or resource settings); the
# proxy's request guard (proxy.py) rejects any other `llamafile_*` key, and a deployment's value wins.
REQUEST_OPTIONS = frozenset(
    {"template", "tool_prompt", "constrain_auto", "thought_schema", "repair_retry", "slot_affinity"}
    | {"fair_share"}
)


@dataclass(frozen=True, slots=True)
class SchemaLimits:
    """The most work one schema (a tool's parameters, a thought or an answer schema) may cause. The
    defaults are far above what agent frameworks and MCP servers send, and far below what stalls a proxy."""

    depth: int = 64  # JSON nesting of the schema as sent (about half as many nested objects)
    nodes: int = 20_000  # JSON values, counting what references and allOf merges create
    alternatives: int = 256  # anyOf options one allOf merge may produce (a cross product)
    constraint_bytes: int = 128 << 10  # the grammar or JSON schema sent for one request
    prompt_bytes: int = 128 << 10  # the tool instructions written into the prompt


DEFAULT_LIMITS = SchemaLimits()


class TemplateName(StrEnum):
    """How roles are reshaped before they reach the server's chat template."""

    AUTO = "auto"  # read the server's chat template from GET /props
    MISTRAL = "mistral"  # no system role, strict user/assistant alternation
    CHATML = "chatml"  # system role accepted, any order (ChatML, Llama-3, most modern templates)
    LLAMA3 = "llama3"  # same rules as chatml
    LEARN = "learn"  # render probe conversations through POST /apply-template once (template_facts.py)


def normalize_api_base(url: str) -> str:
    """`http://h:8080/v1/` -> `http://h:8080`: strip a trailing /v1 as a suffix, never as characters."""
    root = url.strip().rstrip("/")
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root.rstrip("/")


def _schema_object(value: object) -> object:
    # From LLAMAFILE_THOUGHT_SCHEMA the schema is JSON text.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError("thought_schema is not JSON (or nests too deeply)") from None
    if value is not None and not isinstance(value, dict):
        raise ValueError("thought_schema must be a JSON schema object")
    return value


def _clean_key(value: object) -> object:
    # A key read from a file or a k8s secret often ends in a newline; one with other control
    # characters cannot be a header value, and httpx's error would quote it.
    if isinstance(value, str):
        value = value.strip()
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("api_key contains control characters")
        return value or None
    return value


class LlamafileSettings(BaseModel):
    """Everything the adapter needs to talk to one server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_base: Annotated[str, AfterValidator(normalize_api_base)] = Field(
        default=DEFAULT_API_BASE, description="Server root, without /v1."
    )
    api_key: Annotated[SecretStr | None, BeforeValidator(_clean_key)] = Field(
        default=None, description="llamafile --api-key; never invented."
    )
    timeout: float = Field(default=DEFAULT_TIMEOUT_SECONDS, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    template: TemplateName = TemplateName.AUTO
    connect_retries: int = Field(default=2, ge=0, description="Extra attempts when nothing listens.")
    loading_wait: float = Field(
        default=60.0, ge=0, description="Seconds to wait while the server answers 503."
    )
    tool_prompt: Literal["auto", "generic", "native"] = Field(
        default="generic",
        description="How offered tools reach the prompt: 'generic' = the adapter's signatures in the "
        "system text; 'native' = the chat template's own tools rendering, where the server says its "
        "template has one (llama-server --jinja: the prompt is rendered by /apply-template and sent to "
        "/v1/completions; constraint and parsing stay the adapter's); 'auto' = native where the "
        "template both renders tools and reads tool calls (chat_template_caps), generic elsewhere.",
    )
    constrain_auto: bool | Literal["thought"] = Field(
        default=False,
        description="Constrain tool_choice='auto' replies: True = prose or a valid call; "
        "'thought' = a short thought, then a valid call (forced calls get the thought too).",
    )
    thought_schema: Annotated[dict[str, Any] | None, BeforeValidator(_schema_object)] = Field(
        default=None,
        description="A JSON schema for the thought: the thought mode's thought is then JSON valid for it "
        "(AutoGPT's 'thoughts' object), not prose. Implies constrain_auto='thought'.",
    )
    repair_retry: bool = Field(default=False, description="Re-ask once when a reply holds broken call JSON.")
    slot_affinity: bool = Field(
        default=False,
        description="Pin each conversation (by its opening messages) to one server slot via id_slot.",
    )
    fair_share: bool = Field(
        default=False,
        description="With no max_tokens, cap the reply at the slot's share of the context minus the prompt.",
    )
    # Budgets of a schema from the caller (tools, thought, answer): SchemaLimits says what each bounds.
    schema_max_depth: int = Field(default=DEFAULT_LIMITS.depth, gt=0)
    schema_max_nodes: int = Field(default=DEFAULT_LIMITS.nodes, gt=0)
    schema_max_alternatives: int = Field(default=DEFAULT_LIMITS.alternatives, gt=0)
    constraint_max_bytes: int = Field(default=DEFAULT_LIMITS.constraint_bytes, gt=0)
    tool_prompt_max_bytes: int = Field(default=DEFAULT_LIMITS.prompt_bytes, gt=0)
    max_body_bytes: int = Field(default=64 << 20, gt=0, description="Largest answer body, decompressed.")
    max_line_bytes: int = Field(default=8 << 20, gt=0, description="Longest line of an event stream.")

    @model_validator(mode="after")
    def _one_thought_mode(self) -> LlamafileSettings:
        if self.thought_schema is not None and self.constrain_auto is True:
            raise ValueError(
                "thought_schema needs constrain_auto 'thought' (or unset): "
                "constrain_auto=true allows prose or a call, never a thought and a call"
            )
        return self

    @property
    def thought_mode(self) -> bool:
        """A thought (prose, or JSON for thought_schema) before every call, auto or forced."""
        return self.constrain_auto == "thought" or self.thought_schema is not None

    @property
    def schema_limits(self) -> SchemaLimits:
        return SchemaLimits(
            depth=self.schema_max_depth,
            nodes=self.schema_max_nodes,
            alternatives=self.schema_max_alternatives,
            constraint_bytes=self.constraint_max_bytes,
            prompt_bytes=self.tool_prompt_max_bytes,
        )

    @property
    def public_base(self) -> str:
        """api_base as errors may show it: user:password@ masked."""
        return mask_userinfo(self.api_base)

    @property
    def url_base(self) -> str:
        """api_base as HTTP clients see it: without user:password@, which travel only in the
        Authorization header (`auth_headers`): httpx would send them as Basic in place of the key, and
        aiohttp refuses a URL with credentials beside an Authorization header."""
        return without_userinfo(self.api_base)

    @property
    def openai_base(self) -> str:
        return f"{self.api_base}/v1"

    def auth_headers(self) -> dict[str, str]:
        """What the user meant: the API key as Bearer (llamafile --api-key); with no key, Basic from the
        user:password of api_base (a server behind a proxy that wants it); else nothing."""
        if self.api_key is not None:
            return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}
        credentials = url_credentials(self.api_base)
        if credentials is None:
            return {}
        token = base64.b64encode(":".join(credentials).encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def secret_values(self) -> tuple[str, ...]:
        """What must never be shown, in any spelling: the key, and the password of api_base (its user
        name when it has no password: a token given as `http://TOKEN@host`)."""
        credentials = url_credentials(self.api_base)
        found = [self.api_key.get_secret_value()] if self.api_key is not None else []
        if credentials is not None:
            found.append(credentials[1] or credentials[0])
        return tuple(value for value in found if value)

    @classmethod
    def resolve(
        cls,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        options: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> LlamafileSettings:
        """Build settings for one call: explicit values, then LLAMAFILE_* variables, then defaults."""
        values = _layered_values(cls.model_fields, os.environ if environ is None else environ, options)
        values.update({k: v for k, v in (("api_base", api_base), ("api_key", api_key)) if v})
        if timeout is not None:
            values["timeout"] = timeout
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            # Never the input values: one of them may be the key.
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False)
            )
            raise ValueError(problems) from None


def _layered_values(
    fields: Iterable[str], environ: Mapping[str, str], options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The LLAMAFILE_* variables, overridden by the call's `llamafile_*` options (never a connection
    setting: see CONNECTION_FIELDS)."""
    values: dict[str, Any] = {}
    for name in fields:
        env_value = environ.get(f"LLAMAFILE_{name.upper()}")
        if env_value not in (None, ""):
            values[name] = env_value
    for key, value in (options or {}).items():
        if key.startswith(CALL_OPTION_PREFIX) and value is not None:
            name = key.removeprefix(CALL_OPTION_PREFIX)
            if name in CONNECTION_FIELDS:
                raise ValueError(
                    f"{key} is not accepted: pass {name}= (or set LLAMAFILE_{name.upper()}); "
                    "connection settings are never adapter options"
                )
            values[name] = value
    return values


def call_settings(
    *,
    api_base: str | None,
    api_key: str | None,
    timeout: float | httpx.Timeout | None,
    options: Mapping[str, Any] | None,
) -> LlamafileSettings:
    """`LlamafileSettings.resolve` for a call (LiteLLM's `timeout` may be an httpx.Timeout: its read
    timeout is the call's): bad settings are the caller's BadRequestError."""
    if isinstance(timeout, httpx.Timeout):
        timeout = timeout.read or timeout.connect
    try:
        return LlamafileSettings.resolve(
            api_base=api_base, api_key=api_key, timeout=float(timeout) if timeout else None, options=options
        )
    except ValueError as error:
        refused = f"invalid llamafile settings: {error}"
    except Exception as error:  # any other failure on the caller's values is theirs too, never a 500
        refused = f"invalid llamafile settings: {type(error).__name__}"
    raise invalid_request(refused)


def _userinfo_split(url: str) -> tuple[str, str | None, str]:
    """`scheme://userinfo@host/path` -> (`scheme://`, userinfo or None, `host/path`)."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not sep or "@" not in authority:
        return url, None, ""
    userinfo, host = authority.rsplit("@", 1)
    return f"{scheme}://", userinfo, f"{host}{slash}{path}"


def mask_userinfo(url: str) -> str:
    """`http://user:pw@host` -> `http://***@host`."""
    start, userinfo, rest = _userinfo_split(url)
    return url if userinfo is None else f"{start}***@{rest}"


def without_userinfo(url: str) -> str:
    """`http://user:pw@host` -> `http://host`."""
    start, userinfo, rest = _userinfo_split(url)
    return url if userinfo is None else f"{start}{rest}"


def url_credentials(url: str) -> tuple[str, str] | None:
    """(user, password) of `http://user:pw@host`, percent-decoded; None without userinfo."""
    _, userinfo, _ = _userinfo_split(url)
    if userinfo is None:
        return None
    user, _, password = userinfo.partition(":")
    return urllib.parse.unquote(user), urllib.parse.unquote(password)


def split_call_options(optional_params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate `llamafile_*` adapter options from the request parameters meant for the server."""
    options = {k: v for k, v in optional_params.items() if k.startswith(CALL_OPTION_PREFIX)}
    params = {k: v for k, v in optional_params.items() if not k.startswith(CALL_OPTION_PREFIX)}
    return options, params
