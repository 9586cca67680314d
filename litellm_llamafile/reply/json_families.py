# ruff: noqa: RUF001, RUF002 - DeepSeek's special tokens are spelled with fullwidth bars
"""Readers of the families whose arguments are JSON: a block of JSON call objects (Hermes / Qwen 2.5-3 /
Granite 4 `<tool_call>`, Granite 3 `<|tool_call|>`, Command-R7B, Command-R, Llama 3 `<|python_tag|>`, the
constrained forced call), or a name written outside the JSON, then the arguments object (Mistral v11+
`name[ARGS]{...}`, DeepSeek V3 / R1 / V3.1, Kimi K2, gpt-oss harmony, Functionary v3.2). The JSON is
followed by json_readers' spans, so markers inside its strings are text.
"""

from __future__ import annotations

import re

from .json_readers import JsonArgs, JsonCalls
from .readers import StepReader, TagPattern, expect, markers, skip_space


class JsonBlockReader(StepReader):
    """JSON calls, then the block's closer. `closers`: what ends the block (none: it ends with the JSON);
    `optional`: the closer is an end-of-generation token the server does not send (Llama 3's
    `<|eom_id|>`), so the calls are closed by the JSON's end; `separator`: between several JSON values
    (Llama 3's `;`); `ends_before`: the family's own opener, which means this block was never closed."""

    def __init__(
        self,
        *args: object,
        closers: tuple[str, ...] = (),
        optional: bool = False,
        separator: str = "",
        ends_before: tuple[str, ...] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.closers = markers(*closers, *ends_before) if closers else None
        self.ends_before = ends_before
        self.optional = optional
        self.separator = separator
        self.value = JsonCalls(self)
        self.state = "value"

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        at, wait = self.value.step(text, at, final)
        if wait is not None:
            return at, wait
        if self.closers is None or self.optional:
            self.close_completed()
        self.state = "after"
        return at, False

    def _after(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        if self.closers is None:
            self.end()
            return at, False
        pos = skip_space(text, at)
        if self.separator and text.startswith(self.separator, pos):
            self.keep(text[at : pos + len(self.separator)])
            self.value = JsonCalls(self)
            self.state = "value"
            return pos + len(self.separator), False
        m = self.closers.search(text, at)
        if m is not None:
            self.hold_prose(text[at : m.start()])
            if m.group() in self.ends_before:  # another block opens: this one was never closed
                self.fail()
                return m.start(), False
            self.keep(m.group())
            self.end()
            return m.end(), False
        if final and self.optional:
            self.hold_prose(text[at:])
            self.end()
            return len(text), False
        stop = len(text) if final else self.closers.held(text, at)
        self.hold_prose(text[at:stop])
        return stop, True


class CommandRReader(StepReader):
    """Command-R / R+: `Action: ```json\\n[{"tool_name": ..., "parameters": {...}}]\\n````."""

    _FENCE = TagPattern(r"```[\w-]*[ \t]*\n", "\n")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fenced = False
        self.value = JsonCalls(self)

    def _start(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if pos == len(text):
            return pos, True
        if text[pos] != "`":
            self.state = "value"
            return pos, False
        m = self._FENCE.at(text, pos, final, limit=40)
        if isinstance(m, bool):
            return self.wait_or_fail(m, pos)
        self.fenced = True
        self.state = "value"
        return self.take(m.group(), pos)

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        at, wait = self.value.step(text, at, final)
        if wait is not None:
            return at, wait
        if not self.fenced:
            self.end()
            return at, False
        self.state = "fence_end"
        return at, False

    def _fence_end(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        found = expect(text, pos, "```")
        if not found:
            return self.wait_or_fail(found is None, pos)
        self.end()
        return pos + 3, False


# -- a name outside the JSON -------------------------------------------------------------------------

_MISTRAL_NAME = TagPattern(r"([A-Za-z_][\w.\-]{0,127})(?:\[CALL_ID\][^\[]{0,200})?\[ARGS\]", "[ARGS]")
_BARE_NAME = re.compile(r"[A-Za-z_][\w.\-]{0,127}")


class ArgsStep(StepReader):
    """A reader whose calls end with a JSON arguments object: the `args` step streams it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.args: JsonArgs | None = None
        self.after_args = "after"

    def begin_args(self, name: str) -> bool:
        if name not in self.offered:
            return False
        self.open_call(name)
        self.args = JsonArgs(self)
        self.state = "args"
        return True

    def _args(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = skip_space(text, at) if self.args is not None and not self.args.parts else at
        self.keep(text[at:pos])
        if pos == len(text):
            return pos, True
        assert self.args is not None
        if not self.args.parts and text[pos] != "{":
            self.fail()
            return pos, False
        end, wait = self.args.step(text, pos)
        if wait is not None:
            return end, wait
        self.state = self.after_args
        return end, False


class MistralReader(ArgsStep):
    """Mistral / Ministral / Devstral v11+: `[TOOL_CALLS]name[ARGS]{...}` (Mistral Small 3.2 adds
    `[CALL_ID]id`), each parallel call behind its own `[TOOL_CALLS]`; v3 (Nemo): `[TOOL_CALLS] [{...}]`.
    The block has no closer: each call is closed by its JSON's end, and text that is not another call
    ends the block."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = "start"
        self.value = JsonCalls(self)

    def _start(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        if pos == len(text):
            return pos, True
        self.state = "v3" if text[pos] in "[{" else "name"
        return pos, False

    def _v3(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        at, wait = self.value.step(text, at, final)
        if wait is not None:
            return at, wait
        self.end()
        return at, False

    def _name(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _MISTRAL_NAME.at(text, at, final, limit=360)
        if isinstance(m, bool):
            return self.wait_or_fail(m, at)
        if not self.begin_args(m.group(1)):
            self.args = JsonArgs(self)  # its JSON is read, then all of it is given back
            self.state = "skip_args"
        return self.take(m.group(), at)

    def _skip_args(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        assert self.args is not None
        end = self.args.span.advance(text, at)
        self.keep(text[at:end])
        if not self.args.span.done:
            return end, True
        self.fail()
        return end, False

    def _after(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """After a call: another behind `[TOOL_CALLS]`, another right away (`f[ARGS]`), or the end."""
        self.close_completed()
        pos = skip_space(text, at)
        if pos == len(text) and not final:
            return at, True
        marker = expect(text, pos, "[TOOL_CALLS]")
        if marker:
            self.keep(text[at : pos + len("[TOOL_CALLS]")])
            self.state = "name"
            return pos + len("[TOOL_CALLS]"), False
        name = _BARE_NAME.match(text, pos)
        follows: bool | None = False
        if name is not None:
            found = {expect(text, name.end(), m) for m in ("[ARGS]", "[CALL_ID]")}
            follows = True if True in found else None if None in found else False
        if (marker is None or follows is None) and not final:
            return at, True
        if follows:
            self.keep(text[at:pos])
            self.state = "name"
            return pos, False
        self.end()
        return at, False


DEEPSEEK_CALL = "<｜tool▁call▁begin｜>"
DEEPSEEK_CALL_END = "<｜tool▁call▁end｜>"
DEEPSEEK_SEP = "<｜tool▁sep｜>"
DEEPSEEK_END = "<｜tool▁calls▁end｜>"
_DEEPSEEK_HEAD = TagPattern(
    r"\s*(?:function\s*<｜tool▁sep｜>\s*([\w.\-]{1,128})\s*(?:```[\w-]*\s*)?|([\w.\-]{1,128})\s*<｜tool▁sep｜>\s*)(?=\{)",
    "{",
)


class DeepSeekReader(ArgsStep):
    """DeepSeek V3 / R1: `<｜tool▁call▁begin｜>function<｜tool▁sep｜>name\\n```json\\n{...}\\n```
    <｜tool▁call▁end｜>`; V3.1: `<｜tool▁call▁begin｜>name<｜tool▁sep｜>{...}<｜tool▁call▁end｜>`, inside
    `<｜tool▁calls▁begin｜>` ... `<｜tool▁calls▁end｜>`. Each call is closed by its own end marker."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = "between"
        self.after_args = "call_end"

    def _between(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        arriving = False  # the text so far is the start of a marker
        for marker, state in ((DEEPSEEK_END, ""), (DEEPSEEK_CALL, "head")):
            found = expect(text, pos, marker)
            if found and not state:
                self.end()
                return pos + len(marker), False
            if found:
                self.state = state
                return self.take(marker, pos)
            arriving = arriving or found is None
        return self.wait_or_fail(arriving, pos)

    def _head(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _DEEPSEEK_HEAD.at(text, at, final, limit=200)
        if isinstance(m, bool):
            return self.wait_or_fail(m, at)
        if not self.begin_args(m.group(1) or m.group(2)):
            self.skip_to(DEEPSEEK_END)
        return self.take(m.group(), at)

    def _call_end(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        fence = expect(text, pos, "```")
        if fence:
            self.keep("```")
            pos = self.space(text, pos + 3)
        elif fence is None and not final:
            return pos, True
        found = expect(text, pos, DEEPSEEK_CALL_END)
        if not found:
            return self.wait_or_fail(found is None, pos)
        self.keep(DEEPSEEK_CALL_END)
        self.close_completed()
        self.state = "between"
        return pos + len(DEEPSEEK_CALL_END), False


KIMI_CALL = "<|tool_call_begin|>"
KIMI_ARGS = "<|tool_call_argument_begin|>"
KIMI_CALL_END = "<|tool_call_end|>"
KIMI_SECTION_ENDS = ("<|tool_calls_section_end|>", "<|tool_call_section_end|>")
_KIMI_ID = TagPattern(
    r"\s*(?:functions\.)?([\w.\-]{1,128}?)(?::\d{1,6})?\s*<\|tool_call_argument_begin\|>", KIMI_ARGS
)


class KimiK2Reader(ArgsStep):
    """Kimi K2: `<|tool_calls_section_begin|>` then per call `<|tool_call_begin|>functions.name:0
    <|tool_call_argument_begin|>{...}<|tool_call_end|>`, then `<|tool_calls_section_end|>`. Whitespace
    and stray text between the markers are tolerated (the text is content); the call id may lack its
    `functions.` prefix; a bare `<|tool_call_begin|>` (no section) opens a block of one call."""

    def __init__(self, *args: object, section: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.section = section
        self.state = "between" if section else "head"
        self.after_args = "call_end"
        self._ends = markers(KIMI_CALL, *KIMI_SECTION_ENDS)

    def _between(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = self._ends.search(text, at)
        if m is None:
            stop = len(text) if final else self._ends.held(text, at)
            self.hold_prose(text[at:stop])
            return stop, True
        self.hold_prose(text[at : m.start()])
        if m.group() == KIMI_CALL:
            self.state = "head"
            return self.take(KIMI_CALL, m.start())
        self.end()
        return m.end(), False

    def _head(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _KIMI_ID.at(text, at, final, limit=200)
        if isinstance(m, bool):
            return self.wait_or_fail(m, at)
        if not self.begin_args(m.group(1)):
            self.skip_to(*KIMI_SECTION_ENDS) if self.section else self.skip_to(KIMI_CALL_END)
        return self.take(m.group(), at)

    def _call_end(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        found = expect(text, pos, KIMI_CALL_END)
        if not found:
            return self.wait_or_fail(found is None, pos)
        self.keep(KIMI_CALL_END)
        self.close_completed()
        if not self.section:
            self.end()
        self.state = "between"
        return pos + len(KIMI_CALL_END), False


class HarmonyReader(ArgsStep):
    """gpt-oss: a message whose header names the function (`to=functions.name`) holds its JSON arguments;
    `<|call|>` (an end-of-generation token the server drops) may follow."""

    CLOSERS = ("<|call|>", "<|end|>", "<|return|>")

    def __init__(self, *args: object, name: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.name = name

    def _start(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        if not self.begin_args(self.name):
            self.fail()
        return at, False

    def _after(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        self.close_completed()
        pos = skip_space(text, at)
        for closer in self.CLOSERS:
            found = expect(text, pos, closer)
            if found:
                self.end()
                return pos + len(closer), False
            if found is None and not final and pos < len(text):
                return at, True
        if pos == len(text) and not final:
            return at, True
        self.end()
        return at, False


class FunctionaryV32Reader(ArgsStep):
    """Functionary v3.2: after `>>>`, a recipient line: `all` (prose follows, up to the next `>>>`) or a
    function name (its JSON arguments follow)."""

    _RECIPIENT = TagPattern(r"([\w.\-]{1,128})[ \t]*\n", "\n")

    def _start(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = self._RECIPIENT.at(text, at, final, limit=160)
        if isinstance(m, bool):
            return self.wait_or_fail(m, at)
        if m.group(1) == "all":
            self.end()
            return at + m.end(), False
        if not self.begin_args(m.group(1)):
            self.fail()
            return at, False
        return self.take(m.group(), at)

    def _after(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        self.end()
        return at, False
