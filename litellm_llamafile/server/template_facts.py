"""What a server's chat template accepts, learned once per server instead of guessed from its text.

Two sources, both asked once:
- `GET /props` `chat_template_caps` (newer llama-server): `supports_system_role`, `supports_tools`,
  `supports_tool_calls`, `supports_parallel_tool_calls`, `supports_typed_content`, ...
- small probe conversations rendered by `POST /apply-template {"messages"}` -> `{"prompt"}`. A probe is
  accepted when it renders without an error AND without dropping text: every probe message carries a
  distinctive marker string, and all of them must appear in the rendered prompt.

The role strategy (roles.RoleStrategy) follows from those facts. A server with neither endpoint (classic
llamafile) keeps the strict shape, which every template accepts.

The protocol is a sans-IO generator (`facts_flow`): it yields `(method, path, json_body)` and receives the
decoded JSON answer; an HTTP failure is thrown into it as the LiteLLM exception the client raised. A
render failure (400/422/500) is a fact; a missing endpoint (404) ends probing; anything else (no
connection, auth) propagates. `drive` / `adrive` run it with any request function.

    python -m litellm_llamafile.template_facts http://127.0.0.1:8080     # print what was learned
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from litellm.exceptions import (
    APIError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    UnprocessableEntityError,
)

from ..core.errors import server_message
from ..core.settings import TemplateName
from ..prompt.roles import STRICT, RoleStrategy
from ..wire.protocol import Endpoint, Flow, HttpCall

CAPS_KEYS = (
    "supports_system_role",
    "supports_tools",
    "supports_tool_calls",
    "supports_parallel_tool_calls",
    "supports_typed_content",
)

FactsFlow = Flow["TemplateFacts"]

# Answers that say "this template cannot render that conversation"; the probe records them as facts.
RENDER_FAILURES: tuple[type[Exception], ...] = (
    BadRequestError,
    UnprocessableEntityError,
    InternalServerError,
    APIError,
)
DETAIL_CHARS = 160

# Markers: unlikely strings no template writes by itself, one per probe message.
_CALL_ID = "pr0beCa11"  # 9 alphanumerics: Mistral's templates reject any other call-id shape
_TOOL_NAME = "lookup_qzv"
_TOOL_CALL: dict[str, Any] = {
    "id": _CALL_ID,
    "type": "function",
    "function": {"name": _TOOL_NAME, "arguments": json.dumps({"needle": "qzv-arg-5"})},
}


@dataclass(frozen=True, slots=True)
class Check:
    """One fact a probe decides: the marker strings that must all survive rendering, in this order."""

    fact: str
    question: str  # what accepting it tells, for the report
    markers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Probe:
    """One conversation rendered through POST /apply-template, and the facts its prompt decides.
    Every probe ends with a user or tool turn: the server takes a final assistant turn as a reply to
    continue (and refuses to continue one with tool calls)."""

    messages: tuple[dict[str, Any], ...]
    checks: tuple[Check, ...]


PLAIN = Probe(
    ({"role": "user", "content": "qzv-user-1"},),
    (Check("plain", "renders a plain user turn at all", ("qzv-user-1",)),),
)
# Two user turns: some templates (Mistral Nemo/v3) write the system text into the LAST user turn, which
# moves it every turn and defeats the prompt cache; the order check calls that "no system role".
SYSTEM = Probe(
    (
        {"role": "system", "content": "qzv-system-1"},
        {"role": "user", "content": "qzv-user-1"},
        {"role": "assistant", "content": "qzv-assistant-1"},
        {"role": "user", "content": "qzv-user-2"},
    ),
    (
        Check(
            "system",
            "renders a system turn, at the start",
            ("qzv-system-1", "qzv-user-1", "qzv-assistant-1", "qzv-user-2"),
        ),
    ),
)
CONSECUTIVE = Probe(
    (
        {"role": "user", "content": "qzv-user-1"},
        {"role": "user", "content": "qzv-user-2"},
        {"role": "assistant", "content": "qzv-assistant-1"},
        {"role": "assistant", "content": "qzv-assistant-2"},
        {"role": "user", "content": "qzv-user-3"},
    ),
    (
        Check(
            "consecutive",
            "renders two user turns, then two assistant turns, in a row",
            ("qzv-user-1", "qzv-user-2", "qzv-assistant-1", "qzv-assistant-2", "qzv-user-3"),
        ),
    ),
)
ASSISTANT_FIRST = Probe(
    ({"role": "assistant", "content": "qzv-assistant-1"}, {"role": "user", "content": "qzv-user-1"}),
    (
        Check(
            "assistant_first",
            "renders a conversation that opens with the assistant",
            ("qzv-assistant-1", "qzv-user-1"),
        ),
    ),
)
TOOL_TURNS = Probe(
    (
        {"role": "user", "content": "qzv-user-1"},
        {"role": "assistant", "content": "", "tool_calls": [_TOOL_CALL]},
        {"role": "tool", "tool_call_id": _CALL_ID, "name": _TOOL_NAME, "content": "qzv-result-1"},
    ),
    (
        Check(
            "tool_calls",
            "renders an assistant turn's tool_calls (name and arguments)",
            ("qzv-user-1", _TOOL_NAME, "qzv-arg-5"),
        ),
        Check(
            "tool_result", "renders a tool message after the call it answers", ("qzv-user-1", "qzv-result-1")
        ),
    ),
)
PROBES = (PLAIN, SYSTEM, CONSECUTIVE, ASSISTANT_FIRST, TOOL_TURNS)
QUESTIONS = {check.fact: check.question for probe in PROBES for check in probe.checks}


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    name: str
    accepted: bool
    detail: str = ""  # why not: the server's error, or the markers the prompt lost


@dataclass(frozen=True, slots=True)
class TemplateFacts:
    """Everything learned about one server's template. Unknown facts count as "not accepted"."""

    has_props: bool = False
    can_render: bool = False  # the server answers POST /apply-template
    caps: Mapping[str, bool] = field(default_factory=dict)
    outcomes: tuple[ProbeOutcome, ...] = ()

    def accepted(self, name: str) -> bool | None:
        """The probe's verdict, None when it was not run."""
        return next((o.accepted for o in self.outcomes if o.name == name), None)

    def _both(self, cap: str | None, probe: str) -> bool:
        # Every source that spoke must agree: llama-server may fold a system turn into the first user
        # turn by itself (the probe's markers survive) while its caps say the template has no system role.
        known = [v for v in (self.caps.get(cap) if cap else None, self.accepted(probe)) if v is not None]
        return bool(known) and all(known)

    @property
    def renders_plain_chat(self) -> bool | None:
        return self.accepted("plain")

    @property
    def system(self) -> bool:
        return self._both("supports_system_role", "system")

    @property
    def consecutive(self) -> bool:
        return self._both(None, "consecutive")

    @property
    def assistant_first(self) -> bool:
        return self._both(None, "assistant_first")

    @property
    def tool_calls(self) -> bool:
        return self._both("supports_tool_calls", "tool_calls")

    @property
    def tool_role(self) -> bool:
        return self._both(None, "tool_result")

    @property
    def native_tools(self) -> bool:
        """The template renders a `tools` list itself (caps only: probing it would need a model reply)."""
        return bool(self.caps.get("supports_tools"))


CLASSIC = TemplateFacts()  # no /props, no /apply-template: nothing known, the strict shape


def strategy_from_facts(facts: TemplateFacts | None, *, native_tool_turns: bool = False) -> RoleStrategy:
    """The role strategy the facts allow. Tool results and calls stay text (the JSON the adapter's
    instructions ask for) unless `native_tool_turns`, and then only when the template renders both."""
    if facts is None or (not facts.renders_plain_chat and not facts.caps):
        return STRICT
    native = native_tool_turns and facts.tool_calls and facts.tool_role
    return RoleStrategy(
        system=facts.system,
        consecutive=facts.consecutive,
        assistant_first=facts.assistant_first,
        tool_role=native,
        tool_calls=native,
    )


def chosen_strategy(template: TemplateName, facts: TemplateFacts | None) -> RoleStrategy | TemplateName:
    """An explicit `llamafile_template=` wins (returned as is; roles.strategy_for maps it); `auto`
    follows the facts, and a server nothing was learned about gets the strict shape."""
    if template is not TemplateName.AUTO:
        return template
    return strategy_from_facts(facts)


# -- pure parts of the protocol -----------------------------------------------------------------------


def caps_from_props(props: Mapping[str, Any] | None) -> dict[str, bool]:
    caps = props.get("chat_template_caps") if isinstance(props, Mapping) else None
    if not isinstance(caps, Mapping):
        return {}
    return {key: value for key, value in caps.items() if isinstance(key, str) and isinstance(value, bool)}


def _short(text: str) -> str:
    # llama-server's template errors end with the template's own words ("Jinja Exception: ...");
    # the adapter's message starts with the URL and status, which the report does not need.
    for lead in ("Jinja Exception:", "answered HTTP "):
        if lead in text:
            text = text.rsplit(lead, 1)[1]
            break
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + "…"


def _error_text(error: BaseException) -> str:
    """The server's whole error message (the exception's own text is cut to an excerpt)."""
    response = getattr(error, "response", None)
    body = getattr(response, "text", None)
    if isinstance(body, str) and body:
        return server_message(body)
    return str(getattr(error, "message", None) or error)


def judge(probe: Probe, answer: Mapping[str, Any] | BaseException) -> tuple[ProbeOutcome, ...]:
    """A probe's verdicts from the server's answer to POST /apply-template (or the error it raised)."""
    if isinstance(answer, BaseException):
        detail = _short(_error_text(answer))
        return tuple(ProbeOutcome(check.fact, False, detail) for check in probe.checks)
    prompt = answer.get("prompt")
    if not isinstance(prompt, str):
        detail = _short(f"no prompt in the answer: {json.dumps(answer)[:100]}")
        return tuple(ProbeOutcome(check.fact, False, detail) for check in probe.checks)
    return tuple(ProbeOutcome(check.fact, *_verdict(check.markers, prompt)) for check in probe.checks)


def _verdict(markers: Sequence[str], prompt: str) -> tuple[bool, str]:
    lost = [marker for marker in markers if marker not in prompt]
    if lost:
        return False, "dropped " + ", ".join(lost)
    positions = [prompt.index(marker) for marker in markers]
    for (first, at_first), (second, at_second) in itertools.pairwise(zip(markers, positions, strict=True)):
        if at_second < at_first:
            return False, f"moved {first} after {second}"
    return True, ""


def render_call(probe: Probe) -> HttpCall:
    return HttpCall("POST", Endpoint.APPLY_TEMPLATE, {"messages": [dict(m) for m in probe.messages]})


def facts_flow(props: Mapping[str, Any] | None = None, *, fetch_props: bool = True) -> FactsFlow:
    """Learn a server's template facts. Pass `props` when GET /props was already read (then
    `fetch_props` is ignored); with `fetch_props=False` and no props, only the probes run."""
    has_props = props is not None
    if props is None and fetch_props:
        try:
            props = yield HttpCall("GET", Endpoint.PROPS)
            has_props = True
        except NotFoundError:  # classic llamafile
            props = None
    caps = caps_from_props(props)
    outcomes: list[ProbeOutcome] = []
    can_render = False
    for probe in PROBES:
        try:
            answer: Mapping[str, Any] | BaseException = yield render_call(probe)
        except NotFoundError:
            break  # no /apply-template: what is unknown stays "not accepted"
        except RENDER_FAILURES as failure:
            answer = failure
        can_render = True
        outcomes.extend(judge(probe, answer))
        if probe is PLAIN and not outcomes[-1].accepted:
            break  # the template renders nothing; the other probes would only repeat its error
    return TemplateFacts(has_props=has_props, can_render=can_render, caps=caps, outcomes=tuple(outcomes))


# -- report ---------------------------------------------------------------------------------------------


def summary(facts: TemplateFacts) -> str:
    """One line for a debug log."""
    if not facts.has_props and not facts.can_render:
        return "no /props, no /apply-template: strict roles (mistral)"
    strategy = strategy_from_facts(facts)
    known = ", ".join(f"{o.name}={'yes' if o.accepted else 'no'}" for o in facts.outcomes) or "no probes"
    return f"roles {strategy.label} ({known}; caps {dict(facts.caps) or 'none'})"


def report(facts: TemplateFacts, url: str = "") -> str:
    """A readable account of what was learned and the strategy it gives."""
    lines = [f"Template facts{' for ' + url if url else ''}"]
    lines.append(f"  GET /props: {'yes' if facts.has_props else 'no (classic llamafile?)'}")
    if facts.caps:
        lines.append("  chat_template_caps:")
        lines += [f"    {key}: {value}" for key, value in sorted(facts.caps.items())]
    elif facts.has_props:
        lines.append("  chat_template_caps: not reported")
    lines.append(f"  POST /apply-template: {'yes' if facts.can_render else 'no'}")
    for outcome in facts.outcomes:
        verdict = "accepted" if outcome.accepted else f"REJECTED ({outcome.detail})"
        lines.append(f"    {outcome.name:16} {QUESTIONS.get(outcome.name, '')}: {verdict}")
    if facts.accepted("system") and facts.caps.get("supports_system_role") is False:
        lines.append(
            "    (the server folds the system turn itself; caps say the template has no system role)"
        )
    strategy = strategy_from_facts(facts)
    lines.append(f"  role strategy (llamafile_template=auto): {strategy.label}")
    lines.append(
        f"    system role {strategy.system}, same role twice {strategy.consecutive}, "
        f"opening assistant {strategy.assistant_first}"
    )
    native = strategy_from_facts(facts, native_tool_turns=True)
    lines.append(
        f"    native tool turns possible: {native.tool_role and native.tool_calls}; "
        f"template renders `tools`: {facts.native_tools}"
    )
    if facts.renders_plain_chat is False:
        lines.append("  the server cannot render even a plain chat with this template")
    return "\n".join(lines)
