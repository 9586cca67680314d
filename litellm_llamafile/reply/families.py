# ruff: noqa: RUF001 - DeepSeek's special tokens are spelled with fullwidth bars
"""The table of model families' native tool-call and reasoning formats: which marker opens a family's
block, which reader reads it, and what a template says to expect.

Each `Family` row is one family version: the marker that opens its block (and any other spelling that
does), the markers that close it (for the docs and the dropped-marker list; the reader finds them
itself), the reader (json_families.py, tag_readers.py, pythonic_reader.py, gemma4_reader.py), the
markers to strip from text given back when a block is not a call, and the template hints that say a
server renders this family. `parsing.ReplyScanner` finds every family's opener with one search, so a
reply is recognised whatever family the model habitually writes; the non-streamed parse and the stream
run the same readers. Adding a family = one row here + its cases in tests/support/families/.

A *weak* marker is ordinary prose too (`Action:`, `>>>`, a ```tool_code fence, `<function=`): a block
that is not a call goes back to content verbatim. A strong marker is a special token and never reaches
content. `in_reasoning`: the reference lets a call end a think block (Qwen3.5, GLM, DeepSeek, Kimi K2),
so the opener is looked for inside reasoning too; a block there that is not a call stays reasoning.

Formats were read from the models' chat templates (llama.cpp models/templates), DeepSeek's encoding
scripts, and the parsers of llama.cpp (common/chat*.cpp, common/parsers), vLLM and SGLang; the cases in
the tests are our own (tests/support/families/).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .gemma4_reader import Gemma4Reader
from .json_families import (
    DEEPSEEK_CALL,
    DEEPSEEK_CALL_END,
    DEEPSEEK_SEP,
    KIMI_ARGS,
    KIMI_CALL,
    KIMI_CALL_END,
    CommandRReader,
    DeepSeekReader,
    FunctionaryV32Reader,
    HarmonyReader,
    JsonBlockReader,
    KimiK2Reader,
    MistralReader,
)
from .offered import Offered
from .pythonic_reader import PythonicReader
from .readers import Reader, Sink, skip_space
from .tag_readers import DsmlReader, GlmReader, KimiK3Reader, QwenXmlReader

ReaderFactory = Callable[..., Reader]  # (sink, offered, opener, *, weak, strip) -> a reader


class ToolCallTagReader(Reader):
    """`<tool_call>`: Hermes JSON, Qwen3-Coder XML or GLM, told apart by the body's first character."""

    def __init__(self, sink: Sink, offered: Offered, opener: str, *, weak: bool, strip: tuple[str, ...]):
        super().__init__(sink, offered, opener, weak=weak, strip=strip)
        self.inner: Reader | None = None

    def read(self, text: str, at: int, final: bool) -> int:
        if self.inner is None:
            pos = skip_space(text, at)
            self.keep(text[at:pos])
            rest = text[pos : pos + 10]
            undecided = not rest or (rest != "<function=" and "<function=".startswith(rest))
            if undecided and not final:
                return pos  # which family is not known yet
            if not rest:
                self.fail(cut=True)
                return pos
            self.inner = self._choose(text, pos)
            at = pos
        self.inner.truncated = self.truncated
        at = self.inner.read(text, at, final)
        self.done = self.inner.done
        return at

    def _choose(self, text: str, pos: int) -> Reader:
        lead = "".join(self._raw)
        kind: ReaderFactory
        if text[pos] in "{[":
            kind = partial(JsonBlockReader, closers=("</tool_call>",), ends_before=("<tool_call>",))
        elif text.startswith("<function=", pos):
            kind = QwenXmlReader
        else:
            kind = GlmReader
        return kind(self.sink, self.offered, lead, weak=self.weak, strip=self.strip)


class PythonTagReader(Reader):
    """Llama 3.x `<|python_tag|>`: JSON calls (`;`-separated too), or built-in `tool.call(k=v)`."""

    CLOSERS = ("<|eom_id|>", "<|eot_id|>")

    def __init__(self, sink: Sink, offered: Offered, opener: str, *, weak: bool, strip: tuple[str, ...]):
        super().__init__(sink, offered, opener, weak=weak, strip=strip)
        self.inner: Reader | None = None

    def read(self, text: str, at: int, final: bool) -> int:
        if self.inner is None:
            pos = skip_space(text, at)
            self.keep(text[at:pos])
            if pos == len(text):
                if final:
                    self.fail(cut=True)
                return pos
            lead = "".join(self._raw)
            if text[pos] in "{[":
                self.inner = JsonBlockReader(
                    self.sink,
                    self.offered,
                    lead,
                    weak=self.weak,
                    strip=self.strip,
                    closers=self.CLOSERS,
                    optional=True,
                    separator=";",
                )
            else:
                self.inner = PythonicReader(
                    self.sink,
                    self.offered,
                    lead,
                    weak=self.weak,
                    strip=self.strip,
                    closers=self.CLOSERS,
                    optional=True,
                )
            at = pos
        self.inner.truncated = self.truncated
        at = self.inner.read(text, at, final)
        self.done = self.inner.done
        return at


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    models: str  # the model versions that write it (docs)
    opens: str  # the marker that starts a block
    closes: tuple[str, ...]  # markers that end it (() = the block ends with its calls)
    reader: ReaderFactory
    body: str  # what the block holds, for the docs
    also_opens: tuple[str, ...] = ()  # other spellings of the opener
    strip: tuple[str, ...] = ()  # inner markers removed from text given back by a strong family
    weak: bool = False  # the marker is also prose: a block that is not a call is kept verbatim
    in_reasoning: bool = False  # the opener may end a think block (the reference allows calls there)
    template_hints: tuple[str, ...] = ()  # substrings of a chat template that say "this family"
    templates: tuple[str, ...] = ()  # llama.cpp's models/templates that render this format natively

    @property
    def openers(self) -> tuple[str, ...]:
        return (self.opens, *self.also_opens)

    def open_block(self, sink: Sink, offered: Offered, opener: str) -> Reader:
        """The reader of a block this family's `opener` opened; text it gives back loses the special
        tokens of every family that shares the opener."""
        strip = tuple(m for f in FAMILIES if opener in f.openers for m in (*f.openers, *f.closes, *f.strip))
        return self.reader(sink, offered, opener, weak=self.weak, strip=strip)


_DSML = "｜DSML｜"
_K3 = ("<|open|>", "<|close|>", "<|sep|>")  # Kimi K3's special tokens; the tag names are text
_TOOL_CALL_BODY = "a JSON call (Hermes), `<function=f><parameter=k>` (Qwen3-Coder) or `f<arg_key>` (GLM)"

FAMILIES: tuple[Family, ...] = (
    Family(
        "hermes",
        "Hermes 2/3, Qwen 2.5, Qwen3, Granite 4, SmolLM3",
        "<tool_call>",
        ("</tool_call>",),
        ToolCallTagReader,
        '`{"name": f, "arguments": {...}}`, or a list of them',
        in_reasoning=True,
        template_hints=("<tool_call>",),
        templates=(
            "Qwen-Qwen3-0.6B",
            "Qwen-Qwen2.5-7B-Instruct",
            "Qwen-QwQ-32B",
            "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use",
            "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
            "HuggingFaceTB-SmolLM3-3B",
            "ibm-granite-granite-4.0",
            "ibm-granite-granite-4.1",
        ),
    ),
    Family(
        "qwen3_coder",
        "Qwen3-Coder, Qwen3.5, Nemotron Nano 3",
        "<tool_call>",
        ("</tool_call>",),
        ToolCallTagReader,
        "`<function=f><parameter=k>\\nv\\n</parameter></function>`; values typed by the "
        "schema, an undeclared one is text",
        in_reasoning=True,
        template_hints=("<parameter=",),
        templates=("Qwen3-Coder", "Qwen3.5-4B", "NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"),
    ),
    Family(
        "glm",
        "GLM 4.5, 4.6, 4.7, 5",
        "<tool_call>",
        ("</tool_call>",),
        ToolCallTagReader,
        "`f<arg_key>k</arg_key><arg_value>v</arg_value>`; values typed by the schema, an undeclared one "
        "decoded (JSON or Python spelling); a missing last `</arg_value>` is tolerated",
        strip=("<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>"),
        in_reasoning=True,
        template_hints=("<arg_key>",),
        templates=("GLM-4.6", "GLM-4.7-Flash"),
    ),
    Family(
        "llama3",
        "Llama 3.1, 3.2, 3.3",
        "<|python_tag|>",
        ("<|eom_id|>", "<|eot_id|>"),
        PythonTagReader,
        'JSON calls (`;`-separated too) or built-in `tool.call(k=v)`; bare `{"name", "parameters"}` '
        "JSON in prose is read as any JSON call",
        template_hints=("<|python_tag|>", "<|eom_id|>"),
        templates=(
            "meta-llama-Llama-3.1-8B-Instruct",
            "meta-llama-Llama-3.2-3B-Instruct",
            "meta-llama-Llama-3.3-70B-Instruct",
        ),
    ),
    Family(
        "llama4",
        "Llama 4",
        "<|python_start|>",
        ("<|python_end|>",),
        partial(PythonicReader, closers=("<|python_end|>",), optional=True),
        "pythonic `[f(a=1), g()]` (also bare in prose)",
        template_hints=("<|python_start|>",),
    ),
    Family(
        "mistral",
        "Mistral v3 (Nemo), v11+ (Small 3.x, Ministral 3, Devstral, Magistral)",
        "[TOOL_CALLS]",
        (),
        MistralReader,
        "`f[ARGS]{...}`, `f[CALL_ID]id[ARGS]{...}`, one `[TOOL_CALLS]` per call; v3: a JSON list",
        strip=("[ARGS]", "[CALL_ID]"),
        template_hints=("[TOOL_CALLS]", "[AVAILABLE_TOOLS]"),
        templates=(
            "mistralai-Mistral-Nemo-Instruct-2407",
            "Mistral-Small-3.2-24B-Instruct-2506",
            "mistralai-Ministral-3-14B-Reasoning-2512",
            "unsloth-mistral-Devstral-Small-2507",
        ),
    ),
    Family(
        "deepseek",
        "DeepSeek V3, R1, V3.1",
        "<｜tool▁calls▁begin｜>",
        ("<｜tool▁calls▁end｜>",),
        DeepSeekReader,
        "V3/R1: `<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\\n```json\\n{...}\\n```<｜tool▁call▁end｜>`; "
        "V3.1: `<｜tool▁call▁begin｜>f<｜tool▁sep｜>{...}<｜tool▁call▁end｜>`",
        strip=(DEEPSEEK_CALL, DEEPSEEK_CALL_END, DEEPSEEK_SEP),
        template_hints=("<｜tool▁calls▁begin｜>",),
        templates=(
            "deepseek-ai-DeepSeek-V3.1",
            "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
            "llama-cpp-deepseek-r1",
        ),
    ),
    Family(
        "deepseek_v3_2",
        "DeepSeek V3.2",
        f"<{_DSML}function_calls>",
        (f"</{_DSML}function_calls>",),
        partial(DsmlReader, closer=f"</{_DSML}function_calls>"),
        '`<｜DSML｜invoke name="f">` (self-closing when empty) holding `<｜DSML｜parameter name="k" '
        'string="true|false">v</｜DSML｜parameter>`',
        strip=(_DSML,),
        in_reasoning=True,
        template_hints=(_DSML + " and function_calls",),
        templates=("deepseek-ai-DeepSeek-V3.2",),
    ),
    Family(
        "deepseek_v4",
        "DeepSeek V4, V4.1 (V4-Flash-0731)",
        f"<{_DSML}tool_calls>",
        (f"</{_DSML}tool_calls>",),
        partial(DsmlReader, closer=f"</{_DSML}tool_calls>"),
        "as V3.2, in a `tool_calls` block",
        strip=(_DSML,),
        in_reasoning=True,
        template_hints=(_DSML,),
        templates=("deepseek-ai-DeepSeek-V4", "deepseek-ai-DeepSeek-V4-Flash-0731"),
    ),
    Family(
        "gpt_oss",
        "gpt-oss (harmony)",
        "<|channel|>",
        ("<|call|>", "<|end|>", "<|return|>"),
        HarmonyReader,
        "a message whose header (`<|channel|>commentary to=functions.f <|constrain|>json`, or `to=` in the "
        "role header) names the function, holding its JSON arguments",
        template_hints=("<|channel|>",),
        templates=("openai-gpt-oss-120b",),
    ),
    Family(
        "gemma3",
        "Gemma 3",
        "```tool_code",
        ("```",),
        partial(PythonicReader, closers=("```",)),
        "pythonic `f(a=1)`, one call per line",
        weak=True,
        template_hints=("tool_code",),
    ),
    Family(
        "gemma4",
        "Gemma 4",
        "<|tool_call>",
        ("<tool_call|>",),
        Gemma4Reader,
        '`call:f{key:<|"|>text<|"|>,n:1,nested:{...}}`: unquoted keys, strings between `<|"|>`',
        strip=('<|"|>',),
        template_hints=("<|tool_call>",),
        templates=("google-gemma-4-31B-it", "google-gemma-4-31B-it-interleaved"),
    ),
    Family(
        "kimi_k2",
        "Kimi K2, K2.5, K2.6",
        "<|tool_calls_section_begin|>",
        ("<|tool_calls_section_end|>", "<|tool_call_section_end|>"),
        KimiK2Reader,
        "`<|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{...}<|tool_call_end|>` per call; "
        "whitespace and stray text between the markers tolerated",
        also_opens=("<|tool_call_section_begin|>",),
        strip=(KIMI_CALL, KIMI_ARGS, KIMI_CALL_END),
        in_reasoning=True,
        template_hints=("<|tool_calls_section_begin|>",),
        templates=("moonshotai-Kimi-K2", "Kimi-K2-Instruct", "Kimi-K2-Thinking"),
    ),
    Family(
        "kimi_k2_call",
        "Kimi K2 (a call outside a section)",
        KIMI_CALL,
        (KIMI_CALL_END,),
        partial(KimiK2Reader, section=False),
        "`functions.f:0<|tool_call_argument_begin|>{...}` then `<|tool_call_end|>`",
        strip=(KIMI_ARGS, KIMI_CALL_END, "<|tool_calls_section_end|>"),
        in_reasoning=True,
    ),
    Family(
        "kimi_k3",
        "Kimi K3",
        "<|open|>tools<|sep|>",
        ("<|close|>tools<|sep|>",),
        KimiK3Reader,
        '`<|open|>call tool="f"<|sep|>` holding `<|open|>argument key="k" type="t"<|sep|>v<|close|>argument'
        "<|sep|>` tags (typed by the schema, else by `type`) or one `<|open|>json<|sep|>{...}`",
        strip=_K3,
        template_hints=("<|open|>",),
        templates=("Kimi-K3",),
    ),
    Family(
        "functionary_v3_1",
        "Functionary v3.1, Llama 3.1 custom, Qwen3-Coder unwrapped",
        "<function=",
        ("</function>",),
        partial(QwenXmlReader, bare=True),
        "`f>{json}</function>`, or Qwen3-Coder's `<parameter=k>` tags",
        weak=True,
        template_hints=("<function=",),
        templates=("meetkai-functionary-medium-v3.1",),
    ),
    Family(
        "functionary_v3_2",
        "Functionary v3.2",
        ">>>",
        (),
        FunctionaryV32Reader,
        "a recipient line: `all` (prose follows) or a function name (its JSON arguments follow)",
        weak=True,
        template_hints=(">>>all",),
        templates=("meetkai-functionary-medium-v3.2",),
    ),
    Family(
        "command_r",
        "Command-R, R+",
        "Action:",
        (),
        CommandRReader,
        '```` ```json\\n[{"tool_name": f, "parameters": {...}}]\\n``` ````',
        weak=True,
        template_hints=("Action: ```json",),
        templates=("CohereForAI-c4ai-command-r-plus-tool_use",),
    ),
    Family(
        "command_r7b",
        "Command-R7B",
        "<|START_ACTION|>",
        ("<|END_ACTION|>",),
        partial(JsonBlockReader, closers=("<|END_ACTION|>",)),
        '`[{"tool_call_id", "tool_name", "parameters"}]`',
        template_hints=("<|START_ACTION|>",),
        templates=("CohereForAI-c4ai-command-r7b-12-2024-tool_use",),
    ),
    Family(
        "granite",
        "Granite 3.x",
        "<|tool_call|>",
        (),
        JsonBlockReader,
        "a JSON list of calls",
        template_hints=("<|tool_call|>",),
        templates=("ibm-granite-granite-3.3-2B-Instruct",),
    ),
)

_HARMONY_TARGET = re.compile(r"to=functions\.([\w.\-]{1,128})")


# Reasoning blocks: opening marker -> closing markers. Only the openers of `in_reasoning` families are
# looked for inside them (see CALLS_IN_REASONING).
REASONING: dict[str, tuple[str, ...]] = {
    "<think>": ("</think>",),
    "[THINK]": ("[/THINK]",),
    "<|START_THINKING|>": ("<|END_THINKING|>",),
    "<|channel>thought": ("<channel|>",),  # Gemma 4
    "<|open|>think<|sep|>": ("<|close|>think<|sep|>", "<|open|>response<|sep|>"),  # Kimi K3
}
# Think blocks that a call may end, as the references of the in_reasoning families write them; a think
# block the prompt opened counts as one of these.
CALLS_END_THINKING = ("<think>",)
CALLS_IN_REASONING: tuple[str, ...] = tuple(o for f in FAMILIES if f.in_reasoning for o in f.openers)

# gpt-oss harmony: `<|start|>assistant<|channel|>NAME [to=functions.f] [<|constrain|>json]<|message|>`.
# The header decides what the message is: analysis = reasoning, `to=functions.f` = a call, else content.
HARMONY_OPENERS = ("<|start|>", "<|channel|>", "to=functions.")
HARMONY_WEAK_OPENERS = ("to=functions.",)  # also prose: restored when no message header follows
HARMONY_MESSAGE = "<|message|>"
HARMONY_REASONING_CLOSES = ("<|end|>", "<|return|>")
HARMONY_MAX_HEADER = 512  # longer than this without <|message|>: it was prose, not a header
_HARMONY_CHANNEL = re.compile(r"<\|channel\|>\s*(\w+)")


def harmony_target(header: str) -> str:
    """The function a harmony header addresses (`to=functions.NAME`), "" if none."""
    m = _HARMONY_TARGET.search(header)
    return m.group(1) if m is not None else ""


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
    f"</{_DSML}function_calls>",
    f"</{_DSML}tool_calls>",
    "<|tool_call_end|>",
    "<|tool_call_section_end|>",
    "<|channel>",  # Gemma 4: an empty channel opener
    # Kimi K3's message sections
    "<|close|>think<|sep|>",
    "<|open|>response<|sep|>",
    "<|close|>response<|sep|>",
    "<|close|>tools<|sep|>",
    "<|close|>message<|sep|>",
    '<|open|>message role="assistant"<|sep|>',
    "<|end_of_msg|>",
)


def families_by_marker() -> dict[str, Family]:
    """The family whose reader reads a block, by the marker that opens it (the first row with that
    marker; gpt-oss excluded: its blocks are opened by the harmony header)."""
    found: dict[str, Family] = {}
    for family in FAMILIES:
        if family.name != "gpt_oss":
            for opener in family.openers:
                found.setdefault(opener, family)
    return found


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
    # Most specific first: Qwen3-Coder and GLM templates also mention <tool_call>; DeepSeek V3.2 names
    # its DSML block function_calls, V4 tool_calls.
    for specific in ("qwen3_coder", "glm"):
        hints = next(f.template_hints for f in FAMILIES if f.name == specific)
        if any(h in template for h in hints):
            family = specific
    if _DSML in template:
        family = "deepseek_v3_2" if "function_calls" in template else "deepseek_v4"
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
