"""`litellm-llamafile doctor URL`: what a running llamafile / llama.cpp server can do through the adapter,
what it cannot, the fix for each, and the proxy yaml to use.

Everything is asked of the server itself, the way a LiteLLM call would: GET /health and /props, a real
forced tool call through `litellm.completion` (checked against the tool's schema), `count_tokens`
against that call's `usage.prompt_tokens`, and embeddings when the server serves them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jsonschema
import litellm
import openai
from litellm.exceptions import AuthenticationError, NotFoundError

from ..core.errors import server_message
from ..core.settings import LlamafileSettings
from ..flows.counting import count_tokens
from ..integration.litellm_patches import install
from ..prompt.roles import strategy_for
from ..server.probe import ServerInfo, info_from_props
from ..server.servers import SERVERS
from ..wire.protocol import Endpoint, HttpCall
from ..wire.transport import health_status
from .proxy_config import Deployment, render_config

Status = Literal["ok", "fix", "info", "fail"]
KEY_ENV = "LLAMAFILE_API_KEY"
WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
]
START = "start it, e.g. `llama-server -m MODEL.gguf --jinja --port 8080` (or `./MODEL.llamafile --server`)"


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: what was checked, what the server answered, and the fix if any."""

    status: Status
    topic: str
    text: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Server:
    """What /props said, raw and as the adapter reads it."""

    props: Mapping[str, Any]
    info: ServerInfo


class Doctor:
    """The checks, in the order a user needs them: reach, key, what the server is, then real calls."""

    def __init__(self, url: str, api_key: str | None, timeout: float = 120.0) -> None:
        self.settings = LlamafileSettings.resolve(api_base=url, api_key=api_key)
        self.url = self.settings.api_base
        self.shown = self.settings.public_base  # what is printed: never a user:password of the URL
        self.api_key = api_key
        self.timeout = timeout

    def props(self, with_key: bool = True) -> Mapping[str, Any]:
        settings = self.settings if with_key else LlamafileSettings.resolve(api_base=self.url, api_key=None)
        driver = SERVERS.get(self.url).driver(settings, "llamafile/doctor")
        answer = driver.send(HttpCall("GET", Endpoint.PROPS))
        return answer if isinstance(answer, Mapping) else {}

    def call(self, **kwargs: Any) -> Any:
        return litellm.completion(
            model="llamafile/doctor", api_base=self.url, api_key=self.api_key, timeout=self.timeout, **kwargs
        )

    # -- checks -------------------------------------------------------------------------------------

    def reach(self) -> Finding:
        status = health_status(f"{self.url}/health")
        if status is None:
            return Finding("fail", "server", f"nothing answers at {self.shown}", START)
        if status == 503:
            return Finding("fail", "server", "the server is still loading its model", "wait, then run again")
        return Finding("ok", "server", f"answers at {self.shown} (GET /health: {status})")

    def key(self) -> tuple[Finding, Server | None]:
        """Whether the server checks a key and the one given works; /props needs it when it does."""
        try:
            props = self.props()
        except AuthenticationError:
            if self.api_key:
                return Finding("fail", "key", "the server refused the key given", "pass its --api-key"), None
            fix = f"pass its key: `--api-key KEY` (or set {KEY_ENV})"
            return Finding("fail", "key", "the server was started with --api-key", fix), None
        except NotFoundError:
            return self._no_props(), Server({}, ServerInfo())
        server = Server(props, info_from_props(props))
        if not self.api_key:
            return Finding("ok", "key", "none needed"), server
        try:
            self.props(with_key=False)
        except AuthenticationError:
            return Finding("ok", "key", "the server checks its --api-key; the key given works"), server
        return Finding("info", "key", "the server checks no key: the key given is not needed"), server

    def jinja(self) -> Finding | None:
        """Whether the server renders its template with Jinja: /apply-template with `tools` answers a
        prompt, or "tools param requires --jinja flag" (`--no-jinja`, or a build from before Jinja was the
        default). Nothing is generated."""
        driver = SERVERS.get(self.url).driver(self.settings, "llamafile/doctor")
        body = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
        try:
            driver.send(HttpCall("POST", Endpoint.APPLY_TEMPLATE, body))
        except NotFoundError:
            return None  # no /apply-template: a classic llamafile, said under "kind"
        except openai.APIError as error:
            if "jinja" not in _message(error).lower():
                raise
            fix = "start with `--jinja` (the template is then rendered as written; native tools need it)"
            return Finding("fix", "jinja", "the chat template is rendered without Jinja", fix)
        return Finding("ok", "jinja", "the chat template is rendered with Jinja")

    def _no_props(self) -> Finding:
        return Finding(
            "info",
            "key",
            "no GET /props: a classic llamafile server (0.8.x); roles take the strict shape",
            "a llamafile 0.10+ or llama-server (`--jinja`) tells the adapter its template",
        )

    def forced_call(self) -> tuple[Finding, int | None]:
        """A forced call through the adapter, checked against the tool's schema; the prompt tokens used."""
        started = time.monotonic()
        try:
            response = self.call(
                messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=64, temperature=0
            )
        except openai.APIError as error:  # every LiteLLM error derives from it
            text = _message(error)
            if "does not support completions" in text:  # llama-server started with --embeddings
                fix = "for chat and tools, start another server without `--embeddings`"
                return Finding("info", "tool call", "this server serves embeddings only", fix), None
            return Finding("fail", "tool call", text, "see the error above"), None
        took = time.monotonic() - started
        calls = response.choices[0].message.tool_calls or []
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        if not calls:
            why = f"no call came back (finish_reason {response.choices[0].finish_reason})"
            return Finding("fail", "tool call", why, "raise max_tokens, or report it"), prompt
        name, arguments = calls[0].function.name, calls[0].function.arguments
        valid = _valid(arguments, WEATHER["function"]["parameters"])
        shown = f"{name}({arguments})"
        if valid is not None:
            return Finding("fail", "tool call", f"{shown} is not valid for its schema: {valid}"), prompt
        text = f"forced call valid for its schema in {took:.1f} s: {shown}"
        return Finding("ok", "tool call", text), prompt

    def counts(self, used: int | None) -> Finding:
        try:
            counted = count_tokens(
                ASK,
                tools=[WEATHER],
                tool_choice="required",
                api_base=self.url,
                api_key=self.api_key,
                model="llamafile/doctor",
            )
        except openai.APIError as error:
            return Finding("fail", "counts", f"count_tokens failed: {_message(error)}")
        if used is None:
            return Finding("info", "counts", f"count_tokens says {counted}; the call reported no usage")
        if counted == used:
            return Finding("ok", "counts", f"exact: count_tokens {counted} = usage.prompt_tokens {used}")
        fix = "report it with this output (the adapter's counts should equal the server's)"
        return Finding("fail", "counts", f"count_tokens {counted} != usage.prompt_tokens {used}", fix)

    def embeddings(self) -> Finding:
        try:
            answer = litellm.embedding(
                model="llamafile/doctor", input=["hello"], api_base=self.url, api_key=self.api_key
            )
        except openai.APIError as error:
            text = _message(error)
            if "pooling type" in text.lower():  # "Pooling type 'none' is not OAI compatible"
                fix = "start with `--embeddings --pooling mean` (pooling 'none' is not OpenAI-compatible)"
                return Finding("fix", "embeddings", "served, but with pooling 'none'", fix)
            return Finding(
                "info",
                "embeddings",
                "not served",
                "to serve them, start with `--embeddings --pooling mean`",
            )
        return Finding("ok", "embeddings", f"served: {len(answer.data[0]['embedding'])} dimensions")


def _message(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error)
    return " ".join(server_message(text).split())[:300]


def _valid(arguments: str, schema: Mapping[str, Any]) -> str | None:
    """None when `arguments` is JSON valid for `schema`, else why not."""
    try:
        jsonschema.validate(json.loads(arguments), schema)
    except (ValueError, jsonschema.ValidationError) as error:
        return str(getattr(error, "message", error))
    return None


# -- what /props says (pure) ---------------------------------------------------------------------------


def kind_of(server: Server) -> Finding:
    """Which server family answers: it decides what the adapter can ask of it."""
    props, info = server.props, server.info
    model = Path(str(props.get("model_path") or "")).name or "model not named"
    build = f", build {props['build_info']}" if isinstance(props.get("build_info"), str) else ""
    if not info.has_props:
        return Finding("info", "kind", "classic llamafile server (0.8.x): tools by prompt and grammar")
    if info.chat_template is None:
        return Finding("info", "kind", f"llamafiler (llamafile 0.9): {model}; constraints by JSON schema")
    return Finding("ok", "kind", f"llama-server / llamafile 0.10+{build}: {model}")


def context_of(server: Server) -> Finding | None:
    info = server.info
    if not info.n_ctx:
        return None
    slots = info.total_slots or 1
    share = info.n_ctx // slots
    text = f"{info.n_ctx} tokens over {slots} slot{'s' if slots != 1 else ''} ({share} each)"
    if share < 4096:
        fix = f"an agent with many tools needs more: start with `-c {4096 * slots}` or fewer slots (`-np`)"
        return Finding("info", "context", text, fix)
    return Finding("ok", "context", text)


def template_of(server: Server) -> list[Finding]:
    """The role strategy `auto` picks, the reply family, and whether the server renders templates itself."""
    info = server.info
    if not info.has_props:
        return []
    strategy = strategy_for(info.template)
    system = "system role kept" if strategy.system else "no system role: folded into the first user turn"
    family = info.reply.family or "none known: the adapter's JSON calls"
    found = [Finding("ok", "roles", f"llamafile_template=auto picks {strategy.label} ({system})")]
    found.append(Finding("ok", "call format", f"tool-call family of the template: {family}"))
    if dict(info.caps).get("supports_tools"):
        text = "the template renders tools itself: `llamafile_tool_prompt: native` is possible"
        found.append(Finding("info", "native tools", text + " (generic signatures are the default)"))
    if info.reply.thinks:
        text = "thinking template: the adapter reads the think block and turns thinking off on tool turns"
        found.append(Finding("info", "reasoning", text))
    return found


def vision_of(server: Server) -> Finding:
    if server.info.vision is True:
        return Finding("ok", "vision", "image parts are read (a projector is loaded)")
    if server.info.vision is False:
        return Finding("info", "vision", "no vision", "for images, start with `--mmproj MMPROJ.gguf`")
    return Finding("info", "vision", "the server does not say whether it reads images")


# -- the run and the report -----------------------------------------------------------------------------


def diagnose(doctor: Doctor, embeddings: bool = True) -> list[Finding]:
    """Every check that applies, stopping where nothing further can work (no server, a refused key)."""
    found = [doctor.reach()]
    if found[0].status == "fail":
        return found
    key, server = doctor.key()
    found.append(key)
    if server is None:
        return found
    found.append(kind_of(server))
    found += [f for f in (context_of(server),) if f is not None]
    found += template_of(server)
    found += [f for f in (doctor.jinja(),) if f is not None]
    call, used = doctor.forced_call()
    found += [call, doctor.counts(used)]
    if embeddings:
        found.append(doctor.embeddings())
    found.append(vision_of(server))
    return found


def healthy(found: Sequence[Finding]) -> bool:
    return not any(f.status == "fail" for f in found)


MARKS = {"ok": "ok  ", "fix": "FIX ", "info": "info", "fail": "FAIL"}


def render(url: str, found: Sequence[Finding], yaml_text: str | None) -> str:
    lines = [f"litellm-llamafile doctor {url}", ""]
    width = max(len(f.topic) for f in found)
    for finding in found:
        lines.append(f"  {MARKS[finding.status]}  {finding.topic:<{width}}  {finding.text}")
        if finding.fix:
            lines.append(f"        {'':<{width}}  -> {finding.fix}")
    if yaml_text is not None:
        lines += ["", "Proxy config for this server (`litellm-llamafile config` writes the same):", ""]
        lines += ["    " + line for line in yaml_text.rstrip().splitlines()]
    verdict = "works through the adapter" if healthy(found) else "needs the fixes marked FAIL first"
    lines += ["", f"This server {verdict}."]
    return "\n".join(lines)


def proxy_yaml(name: str, url: str, keyed: bool, shown: str | None = None) -> str:
    """The yaml for this server; a URL holding user:password is written as an environment reference."""
    base = url if shown is None or shown == url else "os.environ/LLAMAFILE_API_BASE"
    return render_config([Deployment.of(name, base)], api_key_env=KEY_ENV if keyed else None)


def main(argv: Sequence[str] | None = None, prog: str = "litellm-llamafile doctor") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server's root, e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", default=os.environ.get(KEY_ENV), help=f"its --api-key (or {KEY_ENV})")
    parser.add_argument("--name", default="local", help="the model name clients will use (yaml)")
    parser.add_argument("--no-embeddings", action="store_true", help="skip the embeddings check")
    args = parser.parse_args(argv)
    install()  # what litellm_llamafile.register() does: llamafile/ reaches the adapter
    doctor = Doctor(args.url, args.api_key)
    found = diagnose(doctor, embeddings=not args.no_embeddings)
    usable = healthy(found)
    yaml_text = proxy_yaml(args.name, doctor.url, bool(args.api_key), doctor.shown) if usable else None
    print(render(doctor.shown, found, yaml_text))
    return 0 if usable else 1
