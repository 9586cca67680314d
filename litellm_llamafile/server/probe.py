"""What a server is, learned once per base URL (by its `Server`) from GET /props: its chat template
(which picks the role strategy), its special tokens, context size, slot count and whether it can see
images. Older llamafile servers have no /props; they get the strict strategy, which every template
accepts. Pure, plus the probe flow."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlencode

from litellm.exceptions import APIError, BadRequestError, InternalServerError, NotFoundError

from ..core.errors import invalid_request
from ..core.settings import LlamafileSettings, TemplateName
from ..prompt.roles import RoleStrategy, template_from_chat_template
from ..reply.families import NO_EXPECTATION, ReplyExpectation, expected_reply
from ..wire.protocol import Endpoint, Flow, HttpCall
from .template_facts import TemplateFacts, caps_from_props, facts_flow, strategy_from_facts


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """A model behind a URL: its file (or alias), and a fingerprint of the chat template it renders with."""

    model: str
    template: str


@dataclass(frozen=True, slots=True)
class ServerInfo:
    chat_template: str | None = None
    template: TemplateName = TemplateName.MISTRAL
    bos_token: str | None = None
    eos_token: str | None = None
    n_ctx: int | None = None
    total_slots: int | None = None
    has_props: bool = False
    reply: ReplyExpectation = NO_EXPECTATION  # which family's reply format to expect
    caps: tuple[tuple[str, bool], ...] = ()  # chat_template_caps
    facts: TemplateFacts | None = None  # what probe conversations showed (llamafile_template=learn)
    # /props `modalities.vision` (llama-server loaded with an --mmproj); None: the server does not say
    # (classic llamafile has no /props, and its multimodal support is not advertised anywhere).
    vision: bool | None = None
    model_path: str | None = None  # /props model_path: the GGUF the server loaded
    model_alias: str | None = None  # /props model_alias: the name its replies carry as `model`
    router: bool = False  # llama-server's router mode: several models behind the URL, /props?model= each

    @property
    def identity(self) -> ModelIdentity:
        """Which model this is: what was learned about a server holds for this identity only."""
        template = self.chat_template or ""
        return ModelIdentity(
            self.model_path or self.model_alias or "",
            hashlib.blake2b(template.encode(), digest_size=8).hexdigest() if template else "",
        )

    @property
    def constraint(self) -> Literal["json_schema", "grammar"]:
        """How to constrain sampling. llama-server (its /props has a chat_template) and the classic
        llamafile server (no /props; it drops response_format) both take a GBNF grammar, which lets the
        adapter keep JSON compact; another server with /props (llamafiler) gets a JSON schema."""
        return "json_schema" if self.has_props and self.chat_template is None else "grammar"


def info_from_props(props: Mapping[str, Any]) -> ServerInfo:
    chat_template = props.get("chat_template")
    caps = props.get("chat_template_caps")
    system_role = caps.get("supports_system_role") if isinstance(caps, Mapping) else None
    settings = props.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
    modalities = props.get("modalities")
    vision = modalities.get("vision") if isinstance(modalities, Mapping) else None
    return ServerInfo(
        chat_template=chat_template if isinstance(chat_template, str) else None,
        template=template_from_chat_template(
            chat_template if isinstance(chat_template, str) else None,
            system_role if isinstance(system_role, bool) else None,
        ),
        bos_token=props.get("bos_token") if isinstance(props.get("bos_token"), str) else None,
        eos_token=props.get("eos_token") if isinstance(props.get("eos_token"), str) else None,
        n_ctx=n_ctx if isinstance(n_ctx, int) else None,
        total_slots=props.get("total_slots") if isinstance(props.get("total_slots"), int) else None,
        has_props=True,
        reply=expected_reply(chat_template if isinstance(chat_template, str) else None),
        caps=tuple(sorted(caps_from_props(props).items())),
        vision=vision if isinstance(vision, bool) else None,
        model_path=_text(props.get("model_path")),
        model_alias=_text(props.get("model_alias")),
        router=props.get("role") == "router",
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def images_refused(info: ServerInfo | None, api_base: str, model: str) -> BadRequestError | None:
    """The error for image parts sent to a server that says it cannot see; None when it can, or when it
    does not say (then the images are forwarded and the server answers for itself)."""
    if info is None or info.vision is not False:
        return None
    return invalid_request(
        f"the llamafile server at {api_base} cannot read images (its /props says modalities.vision is "
        f"false), and a message holds an image_url part. Start a vision model with its projector, e.g. "
        f"`llama-server -m MODEL.gguf --mmproj MMPROJ.gguf` (llamafile: `--mmproj`), or send text only",
        model,
    )


def props_path(model: str | None = None) -> str:
    """GET /props, or in router mode the props of one of its models (`?model=`)."""
    return Endpoint.PROPS if not model else f"{Endpoint.PROPS}?{urlencode({'model': model})}"


def probe_flow(model: str | None = None) -> Flow[ServerInfo]:
    """GET /props (of `model`, on a router). A server without it (classic llamafile: 404), or one whose
    /props is broken (a 500, an HTML page) while chat works, gets the strict strategy every template
    accepts; a server still loading or not listening is an error, as for any call."""
    try:
        props = yield HttpCall("GET", props_path(model))
    except (NotFoundError, InternalServerError):
        return ServerInfo()
    except APIError as error:
        if getattr(error, "status_code", None) != 200:  # only a 200 whose body is not JSON props
            raise
        return ServerInfo()
    return info_from_props(props)


def learn_flow(info: ServerInfo) -> Flow[ServerInfo]:
    """`info` with the template facts that probe conversations show (`llamafile_template=learn`)."""
    if info.facts is not None:
        return info
    props = {"chat_template_caps": dict(info.caps)} if info.has_props else None
    facts = yield from facts_flow(props, fetch_props=False)
    return replace(info, facts=facts)


def chosen_template(settings: LlamafileSettings, info: ServerInfo | None) -> TemplateName | RoleStrategy:
    """An explicit setting wins; `learn` follows the learned facts; `auto` follows the server's template
    (its caps and markers: one request per server)."""
    if settings.template is TemplateName.LEARN:
        return strategy_from_facts(info.facts if info else None)
    if settings.template is not TemplateName.AUTO:
        return TemplateName.CHATML if settings.template is TemplateName.LLAMA3 else settings.template
    if info is None:
        return TemplateName.MISTRAL
    return TemplateName.CHATML if info.template is TemplateName.LLAMA3 else info.template


def native_tools(settings: LlamafileSettings, info: ServerInfo | None) -> bool:
    """Offer tools in the chat template's own rendering: where the server says its template has one
    (llama-server's chat_template_caps.supports_tools) and it is asked for (tool_prompt="native"), or left
    to the adapter (tool_prompt="auto") and the template also reads tool calls back
    (supports_tool_calls): a template made for a model trained to call tools. Otherwise generic."""
    caps = dict(info.caps) if info is not None else {}
    if caps.get("supports_tools") is not True:
        return False
    if settings.tool_prompt == "native":
        return True
    return settings.tool_prompt == "auto" and caps.get("supports_tool_calls") is True
