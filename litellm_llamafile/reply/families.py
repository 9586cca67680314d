# ruff: noqa: RUF001 - DeepSeek's special tokens are spelled with fullwidth bars
"""The table of model families' native tool-call and reasoning formats: detect, parse, strip.

Each `Family` says which marker opens one of its blocks, which markers close it (none: the block runs to
the end of the reply), how to parse the block's text into calls, and which inner markers to strip when it
does not parse. `parsing.ReplyScanner` cuts blocks out of the reply with one marker search for every
family at once, so a reply is recognised whatever family the model habitually writes, and both the
non-streamed parse and the stream assembler use this table. Adding a family = one entry here + its cases
in tests/support/family_cases.py.

A *weak* marker is ordinary prose too (`Action:`, `>>>`, a ```tool_code fence): when its block does not
parse, the block goes back to content verbatim. A strong marker is a special token and never reaches
content. Reasoning blocks are listed in REASONING; `HARMONY_*` is gpt-oss's message header.

Formats were checked against llama.cpp's chat parsers (common/chat*.cpp, common/parsers/*.cpp) and the
models' documentation; the cases in the tests are our own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .call_shapes import (
    Call,
    as_arguments,
    calls_in_json,
    calls_in_json_text,
    decode_at,
    dumps,
    pythonic_calls,
    scalar_or_json,
)

# A parsed block: calls and prose, in order. Prose parts become content (and may hold bare JSON calls).
Part = Call | str
Parser = Callable[[str, str, frozenset[str]], list[Part] | None]  # (opening header, body, names)

_NAME = re.compile(r"\s*([A-Za-z_][\w.\-]{0,127})")


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    opens: str  # the marker that starts a block
    closes: tuple[str, ...]  # markers that end it, consumed; () = the block runs to the end of the reply
    parse: Parser
    strip: tuple[str, ...] = ()  # inner markers removed from content when the block does not parse
    weak: bool = False  # the marker is also prose: a block that does not parse is kept verbatim
    ends_before: tuple[str, ...] = ()  # markers that end the block but start the next one
    template_hints: tuple[str, ...] = ()  # substrings of a chat template that say "this family"


# -- parsers ---------------------------------------------------------------------------------------


def _json_body(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """The body is one JSON call or a JSON list of calls, maybe followed by prose."""
    decoded = decode_at(body, 0)
    if decoded is None:
        return None
    value, end = decoded
    calls = calls_in_json(value, names)
    if not calls:
        return None
    rest = body[end:]
    return [*calls, rest] if rest.strip() else list(calls)


def _xml_value_calls(text: str, names: frozenset[str]) -> list[Part] | None:
    """Qwen3-Coder: `<function=name><parameter=p>v</parameter>...</function>`, one or more."""
    parts: list[Part] = []
    pieces = text.split("<function=")
    if pieces[0].strip():
        return None
    for piece in pieces[1:]:
        name, sep, rest = piece.partition(">")
        name = name.strip()
        if not sep or name not in names:
            return None
        rest, _, after = rest.partition("</function>")
        if after.strip():
            return None
        arguments: dict[str, object] = {}
        params = rest.split("<parameter=")
        if params[0].strip():
            return None
        for param in params[1:]:
            key, sep, value = param.partition(">")
            if not sep:
                return None
            value = value.split("</parameter>", 1)[0]
            value = value[1:] if value.startswith("\n") else value
            value = value[:-1] if value.endswith("\n") else value
            arguments[key.strip()] = scalar_or_json(value)
        encoded = dumps(arguments)
        if encoded is None:
            return None
        parts.append((name, encoded))
    return parts or None


def _qwen3_coder(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Qwen3-Coder XML: `<function=name><parameter=k>v</parameter>...</function>`."""
    return _xml_value_calls(body, names)


def _glm(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """GLM 4.x: `name\\n<arg_key>k</arg_key>\\n<arg_value>v</arg_value>...`."""
    name, _, rest = body.partition("<arg_key>")
    name = name.strip()
    if name not in names:
        return None
    arguments: dict[str, object] = {}
    if rest:
        for pair in ("<arg_key>" + rest).split("<arg_key>")[1:]:
            key, sep, value_part = pair.partition("</arg_key>")
            value_part = value_part.strip()
            if not sep or not value_part.startswith("<arg_value>") or not value_part.endswith("</arg_value>"):
                return None
            value = value_part[len("<arg_value>") : -len("</arg_value>")]
            arguments[key.strip()] = scalar_or_json(value)
    encoded = dumps(arguments)
    return None if encoded is None else [(name, encoded)]


def _function_tag(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Functionary v3.1 / Llama 3.1 custom: `<function=name>{json}</function>`; or Qwen3-Coder's XML
    parameters written without the `<tool_call>` wrapper."""
    name, sep, rest = body.partition(">")
    name = name.strip()
    if not sep or name not in names:
        return None
    if "<parameter=" in rest:
        return _xml_value_calls("<function=" + body + "</function>", names)
    arguments = as_arguments(rest)
    return None if arguments is None else [(name, arguments)]


def _python_tag(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Llama 3.x `<|python_tag|>`: JSON calls (`;`-separated too), or `tool.call(k=v)` for built-ins."""
    stripped = body.strip()
    calls = calls_in_json_text(stripped, names)
    if calls:
        return list(calls)
    if ";" in stripped:
        joined: list[Part] = []
        for piece in stripped.split(";"):
            if piece.strip():
                found = calls_in_json_text(piece, names)
                if not found:
                    break
                joined.extend(found)
        else:
            if joined:
                return joined
    found_pythonic = pythonic_calls(stripped, names)
    return list(found_pythonic) if found_pythonic else None


def _pythonic(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Llama 4 `[f(a=1), g()]`, Gemma 3 tool_code `f(a=1)`, one call per line too."""
    calls = pythonic_calls(body, names)
    if calls:
        return list(calls)
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    per_line: list[Part] = []
    for line in lines:
        found = pythonic_calls(line, names)
        if not found:
            return None
        per_line.extend(found)
    return per_line


def _mistral(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Mistral v11+: `name[ARGS]{...}` or `name[CALL_ID]id[ARGS]{...}`, parallel calls each behind their
    own [TOOL_CALLS]; v3: a JSON array. Each JSON value is decoded once from where it starts, so the work
    is linear in the body however many [ARGS] it holds."""
    parts: list[Part] = []
    pos = 0
    while True:
        while body.startswith("[TOOL_CALLS]", pos) or body[pos : pos + 1].isspace():
            pos += len("[TOOL_CALLS]") if body.startswith("[TOOL_CALLS]", pos) else 1
        m = _NAME.match(body, pos)
        if m is None:
            break
        name, after = m.group(1), m.end()
        if body.startswith("[CALL_ID]", after):
            id_end = body.find("[ARGS]", after, after + 200)
            if id_end < 0:
                break
            after = id_end
        if not body.startswith("[ARGS]", after) or name not in names:
            break
        decoded = decode_at(body, after + len("[ARGS]"))
        if decoded is None:
            break
        arguments = as_arguments(decoded[0])
        if arguments is None:
            break
        parts.append((name, arguments))
        pos = decoded[1]
    if not parts:
        return _json_body("", body, names)
    rest = body[pos:]
    return [*parts, rest] if rest.strip() else parts


_DEEPSEEK_CALL = "<｜tool▁call▁begin｜>"
_DEEPSEEK_CALL_END = "<｜tool▁call▁end｜>"
_DEEPSEEK_SEP = "<｜tool▁sep｜>"


def _deepseek(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """V3/R1: `function<sep>name\\n```json\\n{...}\\n```` per call; V3.1: `name<sep>{...}`."""
    items = body.split(_DEEPSEEK_CALL)
    if items[0].strip():
        return None
    parts: list[Part] = []
    for item in items[1:]:
        call, _, after = item.partition(_DEEPSEEK_CALL_END)
        if after.strip():
            return None
        left, sep, right = call.partition(_DEEPSEEK_SEP)
        if not sep:
            return None
        if left.strip() == "function":
            name, _, arguments_text = right.partition("\n")
            arguments_text = arguments_text.strip()
            if arguments_text.startswith("```"):
                arguments_text = arguments_text.partition("\n")[2].rstrip()
                arguments_text = arguments_text.removesuffix("```")
        else:
            name, arguments_text = left, right
        name = name.strip()
        arguments = as_arguments(arguments_text)
        if name not in names or arguments is None:
            return None
        parts.append((name, arguments))
    return parts or None


_HARMONY_TARGET = re.compile(r"to=functions\.([\w.\-]{1,128})")


def _harmony(head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """gpt-oss: the header names the function (`to=functions.name`), the message is its JSON."""
    m = _HARMONY_TARGET.search(head)
    if m is None or m.group(1) not in names:
        return None
    arguments = as_arguments(body)
    return None if arguments is None else [(m.group(1), arguments)]


_KIMI_CALL = "<|tool_call_begin|>"
_KIMI_ARGS = "<|tool_call_argument_begin|>"
_KIMI_END = "<|tool_call_end|>"


def _kimi(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Kimi K2: `<|tool_call_begin|>functions.name:0<|tool_call_argument_begin|>{...}<|tool_call_end|>`."""
    items = body.split(_KIMI_CALL)
    if items[0].strip():
        return None
    parts: list[Part] = []
    for item in items[1:]:
        call, _, after = item.partition(_KIMI_END)
        if after.strip():
            return None
        ident, sep, arguments_text = call.partition(_KIMI_ARGS)
        name = ident.strip().removeprefix("functions.").rpartition(":")[0] or ident.strip()
        arguments = as_arguments(arguments_text)
        if not sep or name not in names or arguments is None:
            return None
        parts.append((name, arguments))
    return parts or None


def _functionary(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Functionary v3.2: after `>>>`, a recipient line: `all` (prose follows) or a function name (its
    JSON arguments follow)."""
    recipient, sep, rest = body.partition("\n")
    recipient = recipient.strip()
    if not sep and recipient != "all":
        return None
    if recipient == "all":
        return [rest]
    arguments = as_arguments(rest)
    if recipient not in names or arguments is None:
        return None
    return [(recipient, arguments)]


def _command_r(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Command-R/R+: `Action: ```json\\n[{"tool_name": ..., "parameters": {...}}]\\n````."""
    stripped = body.lstrip()
    if stripped.startswith("```"):
        inner = stripped.partition("\n")[2]
        inner, fence, rest = inner.partition("```")
        if not fence:
            return None
        calls = calls_in_json_text(inner, names)
        if not calls:
            return None
        return [*calls, rest] if rest.strip() else list(calls)
    return _json_body("", body, names)


def _gemma4(_head: str, body: str, names: frozenset[str]) -> list[Part] | None:
    """Gemma 4: `call:name{key:<|"|>text<|"|>,n:1,nested:{...}}`: unquoted keys, strings in <|"|>."""
    text = body.strip()
    if not text.startswith("call:"):
        return None
    brace = text.find("{")
    name = text[len("call:") : brace].strip() if brace >= 0 else ""
    if name not in names:
        return None
    value = _Gemma4Reader(text, brace).read()
    if not isinstance(value, dict):
        return None
    encoded = dumps(value)
    return None if encoded is None else [(name, encoded)]


_GEMMA4_BARE = re.compile(r"[^,}\]]*")


class _Gemma4Reader:
    """A tiny reader for Gemma 4's argument syntax; iterative depth counting bounds recursion."""

    QUOTE = '<|"|>'
    MAX_DEPTH = 64

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos
        self.depth = 0

    def read(self) -> object:
        try:
            value = self._value()
        except (ValueError, IndexError):
            return None
        return value if not self.text[self.pos :].strip() else None

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _value(self) -> object:
        self._skip()
        text = self.text
        if text.startswith(self.QUOTE, self.pos):
            end = text.index(self.QUOTE, self.pos + len(self.QUOTE))
            string = text[self.pos + len(self.QUOTE) : end]
            self.pos = end + len(self.QUOTE)
            return string
        if text[self.pos] in "{[":
            self.depth += 1
            if self.depth > self.MAX_DEPTH:
                raise ValueError("too deep")
            nested = self._object() if text[self.pos] == "{" else self._array()
            self.depth -= 1
            return nested
        m = _GEMMA4_BARE.match(text, self.pos)
        assert m is not None
        self.pos = m.end()
        return scalar_or_json(m.group().strip())

    def _object(self) -> dict[str, object]:
        self.pos += 1
        result: dict[str, object] = {}
        while True:
            self._skip()
            if self.text[self.pos] == "}":
                self.pos += 1
                return result
            colon = self.text.index(":", self.pos)
            key = self.text[self.pos : colon].strip()
            if not key or any(c in key for c in "{}[],"):
                raise ValueError("bad key")
            self.pos = colon + 1
            result[key] = self._value()
            self._skip()
            if self.text[self.pos] == ",":
                self.pos += 1

    def _array(self) -> list[object]:
        self.pos += 1
        result: list[object] = []
        while True:
            self._skip()
            if self.text[self.pos] == "]":
                self.pos += 1
                return result
            result.append(self._value())
            self._skip()
            if self.text[self.pos] == ",":
                self.pos += 1


# -- the table -------------------------------------------------------------------------------------

FAMILIES: tuple[Family, ...] = (
    # Hermes 2/3, Qwen 2.5/3, Granite 4, SmolLM3: `<tool_call>{json}</tool_call>`. Qwen3-Coder and GLM
    # share the tag with other bodies; entries with one marker are tried in this order.
    Family("hermes", "<tool_call>", ("</tool_call>",), _json_body, template_hints=("<tool_call>",)),
    Family("qwen3_coder", "<tool_call>", ("</tool_call>",), _qwen3_coder, template_hints=("<parameter=",)),
    Family("glm", "<tool_call>", ("</tool_call>",), _glm, template_hints=("<arg_key>",)),
    Family(
        "llama3",
        "<|python_tag|>",
        ("<|eom_id|>", "<|eot_id|>"),
        _python_tag,
        template_hints=("<|python_tag|>", "<|eom_id|>"),
    ),
    Family(
        "llama4", "<|python_start|>", ("<|python_end|>",), _pythonic, template_hints=("<|python_start|>",)
    ),
    Family(
        "mistral",
        "[TOOL_CALLS]",
        (),
        _mistral,
        strip=("[TOOL_CALLS]", "[CALL_ID]"),
        template_hints=("[TOOL_CALLS]", "[AVAILABLE_TOOLS]"),
    ),
    Family(
        "deepseek",
        "<｜tool▁calls▁begin｜>",
        ("<｜tool▁calls▁end｜>",),
        _deepseek,
        strip=(_DEEPSEEK_CALL, _DEEPSEEK_CALL_END, _DEEPSEEK_SEP),
        template_hints=("<｜tool▁calls▁begin｜>",),
    ),
    Family(
        "gpt_oss",
        "<|channel|>",  # opened through the harmony header; see HARMONY_OPENERS
        ("<|call|>", "<|end|>", "<|return|>"),
        _harmony,
        template_hints=("<|channel|>",),
    ),
    Family("gemma3", "```tool_code", ("```",), _pythonic, weak=True, template_hints=("tool_code",)),
    Family("gemma4", "<|tool_call>", ("<tool_call|>",), _gemma4, template_hints=("<|tool_call>",)),
    Family(
        "kimi_k2",
        "<|tool_calls_section_begin|>",
        ("<|tool_calls_section_end|>",),
        _kimi,
        strip=(_KIMI_CALL, _KIMI_ARGS, _KIMI_END),
        template_hints=("<|tool_calls_section_begin|>",),
    ),
    Family("functionary_v3_1", "<function=", ("</function>",), _function_tag, template_hints=("<function=",)),
    Family(
        "functionary_v3_2",
        ">>>",
        (),
        _functionary,
        weak=True,
        ends_before=(">>>",),
        template_hints=(">>>all",),
    ),
    Family("command_r", "Action:", (), _command_r, weak=True, template_hints=("Action: ```json",)),
    Family(
        "command_r7b",
        "<|START_ACTION|>",
        ("<|END_ACTION|>",),
        _json_body,
        template_hints=("<|START_ACTION|>",),
    ),
    Family("granite", "<|tool_call|>", (), _json_body, template_hints=("<|tool_call|>",)),
)

# Reasoning blocks: opening marker -> closing markers. Their text is never parsed for calls.
REASONING: dict[str, tuple[str, ...]] = {
    "<think>": ("</think>",),
    "[THINK]": ("[/THINK]",),
    "<|START_THINKING|>": ("<|END_THINKING|>",),
    "<|channel>thought": ("<channel|>",),  # Gemma 4
}

# gpt-oss harmony: `<|start|>assistant<|channel|>NAME [to=functions.f] [<|constrain|>json]<|message|>`.
# The header decides what the message is: analysis = reasoning, `to=functions.f` = a call, else content.
HARMONY_OPENERS = ("<|start|>", "<|channel|>")
HARMONY_MESSAGE = "<|message|>"
HARMONY_REASONING_CLOSES = ("<|end|>", "<|return|>")
HARMONY_MAX_HEADER = 512  # longer than this without <|message|>: it was prose, not a header
_HARMONY_CHANNEL = re.compile(r"<\|channel\|>\s*(\w+)")


def harmony_kind(header: str) -> str:
    """'call', 'reasoning' or 'content' for a harmony message header (opening marker included)."""
    if _HARMONY_TARGET.search(header):
        return "call"
    m = _HARMONY_CHANNEL.search(header)
    return "reasoning" if m is not None and m.group(1) == "analysis" else "content"


# Special tokens that end a message or block and mean nothing in content: dropped wherever they appear.
DROPPED_MARKERS: tuple[str, ...] = (
    "</think>",
    "[/THINK]",
    "<|END_THINKING|>",
    "<channel|>",
    "<|START_RESPONSE|>",
    "<|END_RESPONSE|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "<｜end▁of▁sentence｜>",
    "</tool_call>",
    "<tool_call|>",
    "<|python_end|>",
    "<|tool_calls_section_end|>",
    "<｜tool▁calls▁end｜>",
    "<|END_ACTION|>",
)


def families_by_marker() -> dict[str, tuple[Family, ...]]:
    """Families grouped by the marker that opens their blocks, in table order (gpt-oss excluded: its
    blocks are opened by the harmony header)."""
    grouped: dict[str, list[Family]] = {}
    for family in FAMILIES:
        if family.name != "gpt_oss":
            grouped.setdefault(family.opens, []).append(family)
    return {marker: tuple(group) for marker, group in grouped.items()}


GPT_OSS = next(f for f in FAMILIES if f.name == "gpt_oss")


# -- what a template says to expect -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyExpectation:
    """What a server's chat template says about the replies it will produce.

    `family`: the native tool-call family the template renders (None: unknown / generic JSON);
    `starts_in_reasoning`: the generation prompt opens a think block, so the reply begins inside it
    (DeepSeek-R1 style: only `...</think>answer` comes back); `reply_prefix`: marker text the prompt
    ends with that the reply continues (Functionary v3.2's `>>>`); `thinks`: the template knows a think
    block (see _THINKING_WORDS), so a constrained reply needs thinking switched off (llama-server files
    a reply under an opened block as reasoning_content); `opener_echoed`: a constrained reply, which
    llama-server (`reasoning_format: none`) starts with the prompt's think opener, if any (see
    parsing.ReplyScanner)."""

    family: str | None
    starts_in_reasoning: bool = False
    reply_prefix: str = ""
    thinks: bool = False
    opener_echoed: bool = False
    reads_effort: bool = False  # the template reads `reasoning_effort` (gpt-oss, Solar Open)


_REASONING_OPENERS = tuple(REASONING)
# A template that writes or reads any of these knows a think block (muse-glimmer reads only
# `reasoning_content`, Solar Open only `reasoning_effort` and its own `<|think|>`).
_THINKING_WORDS = ("enable_thinking", "reasoning_content", "reasoning_effort", *_REASONING_OPENERS)


NO_EXPECTATION = ReplyExpectation(None, False, "")


def expected_reply(chat_template: str | None, prompt: str | None = None) -> ReplyExpectation:
    """From `GET /props` `chat_template` and/or a prompt rendered with the generation prompt (the end of
    `POST /apply-template`'s answer): which family to expect and whether the reply starts in reasoning.
    A rendered prompt is the stronger evidence; the template alone is read heuristically."""
    template = chat_template or ""
    family = next(
        (
            f.name
            for f in reversed(FAMILIES)
            if any(h in template for h in f.template_hints) and f.template_hints
        ),
        None,
    )
    # Most specific first: Qwen3-Coder and GLM templates also mention <tool_call>.
    for specific in ("qwen3_coder", "glm"):
        hints = next(f.template_hints for f in FAMILIES if f.name == specific)
        if any(h in template for h in hints):
            family = specific
    tail = (prompt or "").rstrip()
    thinks = any(word in template for word in _THINKING_WORDS)
    effort = "reasoning_effort" in template
    if prompt is not None:
        starts_in_reasoning = tail.endswith(_REASONING_OPENERS)
        reply_prefix = ">>>" if tail.endswith(">>>") else ""
        return ReplyExpectation(
            family, starts_in_reasoning, reply_prefix, thinks or starts_in_reasoning, reads_effort=effort
        )
    opens = _template_opens_think(template)
    prefix = ">>>" if "'>>>'" in template else ""
    return ReplyExpectation(family, opens, prefix, thinks or opens, reads_effort=effort)


_GENERATION_BLOCK = re.compile(r"if\s+add_generation_prompt\s*%\}(.*?)\{%-?\s*endif", re.DOTALL)


def _template_opens_think(template: str) -> bool:
    """The generation-prompt branch writes an opening think tag it does not close (DeepSeek-R1)."""
    for m in _GENERATION_BLOCK.finditer(template):
        block = m.group(1)
        opened = max(block.rfind(opener) for opener in _REASONING_OPENERS)
        closed = max(block.rfind(closer) for closes in REASONING.values() for closer in closes)
        if opened >= 0 and opened > closed:
            return True
    return False
