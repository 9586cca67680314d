# ruff: noqa: RUF001, RUF002 - DeepSeek's special tokens are spelled with fullwidth bars
"""The tag formats, where each argument is its own tag and a value is plain text: Qwen3-Coder / Qwen3.5 XML
(`<function=f><parameter=k>v</parameter></function>`), GLM 4.5-5 (`f<arg_key>k</arg_key><arg_value>v
</arg_value>`), DeepSeek V3.2-V4.1 DSML (`<｜DSML｜invoke name="f"><｜DSML｜parameter name="k"
string="true">v</｜DSML｜parameter></｜DSML｜invoke>`) and Kimi K3 (`<|open|>call tool="f"<|sep|>
<|open|>argument key="k" type="string"<|sep|>v<|close|>argument<|sep|><|close|>call<|sep|>`).

A value is typed by the offered tool's schema (offered.typed_value); a `string` value streams as it is
read. A value ends only at its closing tag followed by the family's next tag (another argument, the end
of the call), so a value that quotes the family's own markers stays text. A call is closed by its own
closing tag; one still open when the reply ends is given back as text.
"""

from __future__ import annotations

import html
import re

from .json_readers import JsonArgs
from .readers import ArgsWriter, StepReader, TagPattern, TagValue, expect, markers, skip_space

MAX_SPACE_AFTER_CLOSER = 256  # past this much whitespace after a closing tag, the tag was value text

Rule = tuple[str, tuple[str, ...], bool]  # closing tag, the tags that may follow it, it also closes the call


class TaggedReader(StepReader):
    """Shared machinery: the arguments writer, the value being read and the rules that end it."""

    RULES: tuple[Rule, ...] = ()
    UNTYPED = "value"  # how the family's reference types a parameter its tool does not declare

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.name = ""
        self.writer = ArgsWriter(self)
        self.value: TagValue | None = None
        self.truncated = False
        self._closers = markers(*(rule[0] for rule in self.RULES))
        self._rules = {closer: (markers(*follow), closes) for closer, follow, closes in self.RULES}

    def start_call(self, name: str) -> bool:
        if name not in self.offered:
            return False
        self.name = name
        self.writer = ArgsWriter(self)
        self.open_call(name)
        return True

    def start_value(self, key: str, written: str | None = None, *, newlines: bool = False) -> None:
        """A value begins. `written`: the type the model wrote beside it (DSML's `string="true"`, Kimi
        K3's `type`), which types a parameter the schema does not, and picks the text when the schema
        allows a string among others."""
        types = self.offered.types(self.name, key)
        if written is None:  # the family's rule for a parameter the tool does not declare
            untyped = self.UNTYPED if self.offered.declares(self.name) else "json"
        else:
            untyped = "string" if written == "string" else "value"
            if written == "string" and types and "string" in types:
                types = frozenset({"string"})
        self.writer.key(key)
        self.value = TagValue(self.writer, types, untyped=untyped, newlines=newlines)

    def end_call(self) -> None:
        self.writer.close()
        self.close_completed()

    def read_value(self, text: str, at: int, final: bool) -> tuple[int, str | None]:
        """Value text from `at`: (where reading stopped, the closing tag that ended the value) or
        (position, None) while the value goes on."""
        assert self.value is not None
        while True:
            m = self._closers.search(text, at)
            if m is None:
                stop = len(text) if final else self._closers.held(text, at)
                self._add(text[at:stop])
                return stop, None
            self._add(text[at : m.start()])
            verdict = self._ends_value(m.group(), text, m.end(), final)
            if verdict is None:
                return m.start(), None
            self.keep(m.group())
            if verdict:
                self.value.finish()
                self.value = None
                return m.end(), m.group()
            self.value.add(m.group())
            at = m.end()

    def closes_call(self, closer: str) -> bool:
        return self._rules[closer][1]

    def _add(self, piece: str) -> None:
        assert self.value is not None
        self.keep(piece)
        self.value.add(piece)

    def value_step(self, text: str, at: int, final: bool, after: str) -> tuple[int, bool]:
        """The value state: read it; at its end, the call closes (a closing tag that also closes the
        call) or the state becomes `after`."""
        pos, closer = self.read_value(text, at, final)
        if closer is None:
            return pos, True
        if self.closes_call(closer):
            self.end_call()
            self.state = "done_call"
        else:
            self.state = after
        return pos, False

    def _ends_value(self, closer: str, text: str, pos: int, final: bool) -> bool | None:
        """Whether this closing tag ends the value: it does when the family's next tag (or, unless the
        reply was cut off, the end of the reply) follows it; None to wait for more text."""
        followers, _ = self._rules[closer]
        after = skip_space(text, pos)
        if after - pos > MAX_SPACE_AFTER_CLOSER:
            return False
        if after == len(text):
            return (not self.truncated) if final else None
        if any(text.startswith(f, after) for f in followers.markers):
            return True
        rest = text[after : after + followers.longest]  # bounded: this runs at every closing tag
        at_end = after + len(rest) == len(text)
        if not final and at_end and any(f.startswith(rest) for f in followers.markers):
            return None
        return False


# -- Qwen3-Coder, Qwen3.5, and Functionary v3.1's `<function=name>` -------------------------------------

_FUNCTION = TagPattern(r"<function=([^>\n]{1,128})>", ">")
_NAME = TagPattern(r"([^>\n]{1,128})>", ">")
_PARAMETER = TagPattern(r"<parameter=([^>\n]{1,128})>", ">")


class QwenXmlReader(TaggedReader):
    """`<tool_call>` then one or more `<function=name>` with `<parameter=key>\nvalue\n</parameter>`, then
    `</function>` and `</tool_call>`. Opened by `<function=` itself (`bare`: Functionary v3.1, Qwen3-Coder
    without the wrapper), the block is one call whose arguments may also be one JSON object."""

    RULES = (("</parameter>", ("<parameter=", "</function>"), False),)
    UNTYPED = "string"  # as vLLM's qwen3coder parser: an undeclared parameter is its text

    def __init__(self, *args: object, bare: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.bare = bare
        self.state = "name" if bare else "call"
        self.args: JsonArgs | None = None

    def _call(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        m = _FUNCTION.at(text, pos, final)
        if isinstance(m, bool):
            return self.wait_or_fail(m, pos)
        if not self.start_call(m.group(1).strip()):
            self.skip_to("</tool_call>")
        else:
            self.state = "params"
        return self.take(m.group(), pos)

    def _name(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        m = _NAME.at(text, at, final)
        if isinstance(m, bool) or not self.start_call(m.group(1).strip()):
            return self.wait_or_fail(m is True, at)
        self.state = "body"
        return self.take(m.group(), at)

    def _body(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """After a bare `<function=name>`: a JSON object (Functionary v3.1) or XML parameters."""
        pos = skip_space(text, at)
        if pos == len(text):
            return at, True
        self.state = "params"
        if text[pos] == "{":
            self.keep(text[at:pos])
            self.args = JsonArgs(self)
            self.state = "json"
            return pos, False
        return at, False

    def _json(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        assert self.args is not None
        end, wait = self.args.step(text, at)
        if wait is not None:
            return end, wait
        self.state = "close"
        return end, False

    def _close(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        found = expect(text, pos, "</function>")
        if not found:
            return self.wait_or_fail(found is None, pos)
        self.keep("</function>")
        self.close_completed()
        self.state = "done_call"
        return pos + len("</function>"), False

    def _params(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        closing = expect(text, pos, "</function>")
        if closing:
            self.keep("</function>")
            self.end_call()
            self.state = "done_call"
            return pos + len("</function>"), False
        m = _PARAMETER.at(text, pos, final)
        if isinstance(m, bool):
            return self.wait_or_fail(m or closing is None, pos)
        self.start_value(m.group(1).strip(), newlines=True)
        self.state = "value"
        return self.take(m.group(), pos)

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        return self.value_step(text, at, final, "params")

    def _done_call(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """After a closed function: another `<function=`, the wrapper's `</tool_call>`, or the end."""
        pos = skip_space(text, at)
        if pos == len(text):
            if final:
                self.end()
            return at, not final
        wrapper = expect(text, pos, "</tool_call>")
        another = False if self.bare else expect(text, pos, "<function=")
        if wrapper:
            self.end()
            return pos + len("</tool_call>"), False
        if another:
            self.state = "call"
            return at, False
        if (wrapper is None or another is None) and not final:
            return at, True
        self.end()
        return at, False


# -- GLM 4.5 - 5 ----------------------------------------------------------------------------------------

_GLM_NAME = re.compile(r"\s*([\w.\-]{1,128})\s*")
_GLM_AFTER_NAME = ("<arg_key>", "</tool_call>")
_GLM_ARG = TagPattern(r"<arg_key>([^<>]{0,256})</arg_key>\s*<arg_value>", "<arg_value>")


class GlmReader(TaggedReader):
    """`<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value>...</tool_call>`, with or without
    newlines between the tags (4.5/4.6 write them, 4.7 does not). A missing last `</arg_value>` before
    `</tool_call>` is tolerated, as GLM 4.7 writes it."""

    RULES = (
        ("</arg_value>", ("<arg_key>", "</tool_call>"), False),
        ("</tool_call>", ("<tool_call>",), True),
    )
    UNTYPED = "value"  # JSON or Python spelling, else the text (vLLM's glm4_moe parser)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = "name"

    def _name(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        """The tool's name, then `<arg_key>` or `</tool_call>`; anything else (prose after a stray
        `<tool_call>`) fails at once."""
        m = _GLM_NAME.match(text, at, at + 160)
        if m is None or m.end() == len(text):
            return at, len(text) - at < 160 or self._fail_here(at)
        after = [expect(text, m.end(), tag) for tag in _GLM_AFTER_NAME]
        if True not in after:
            return at, None in after or self._fail_here(at)
        if not self.start_call(m.group(1)):
            self.skip_to("</tool_call>")
        else:
            self.state = "args"
        return self.take(m.group(), at)

    def _fail_here(self, at: int) -> bool:
        self.fail()
        return False

    def _args(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        closing = expect(text, pos, "</tool_call>")
        if closing:
            self.end_call()
            self.end()
            return pos + len("</tool_call>"), False
        m = _GLM_ARG.at(text, pos, final, limit=320)
        if isinstance(m, bool):
            return self.wait_or_fail(m or closing is None, pos)
        self.start_value(m.group(1).strip())
        self.state = "value"
        return self.take(m.group(), pos)

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        return self.value_step(text, at, final, "args")

    def _done_call(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        self.end()
        return at, False


# -- DeepSeek V3.2, V4, V4.1: DSML ----------------------------------------------------------------------

DSML = "｜DSML｜"
_INVOKE = TagPattern(r'<｜DSML｜invoke\s+name="([^">]{1,128})"\s*(/?)>', ">")
_DSML_PARAMETER = TagPattern(r'<｜DSML｜parameter\s+name="([^">]{1,128})"(?:\s+string="(\w*)")?\s*>', ">")
INVOKE_END = f"</{DSML}invoke>"


class DsmlReader(TaggedReader):
    """`<｜DSML｜function_calls>` (V3.2) or `<｜DSML｜tool_calls>` (V4, V4.1) holding `<｜DSML｜invoke
    name="f">` elements (self-closing when there are no arguments) with `<｜DSML｜parameter name="k"
    string="true|false">v</｜DSML｜parameter>`: `string="true"` is text, `"false"` is JSON, unless the tool's
    schema types the parameter."""

    RULES = ((f"</{DSML}parameter>", (f"<{DSML}parameter", INVOKE_END), False),)

    def __init__(self, *args: object, closer: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = "between"
        self.closer = closer

    def _between(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        ending = expect(text, pos, self.closer)
        if ending:
            self.end()
            return pos + len(self.closer), False
        m = _INVOKE.at(text, pos, final)
        if isinstance(m, bool):
            return self.wait_or_fail(m or ending is None, pos)
        if not self.start_call(m.group(1)):
            self.skip_to(self.closer)
            return self.take(m.group(), pos)
        self.state = "params"
        self.keep(m.group())
        if m.group(2):  # self-closing: no arguments
            self.end_call()
            self.state = "between"
        return pos + m.end(), False

    def _params(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        closing = expect(text, pos, INVOKE_END)
        if closing:
            self.keep(INVOKE_END)
            self.end_call()
            self.state = "between"
            return pos + len(INVOKE_END), False
        m = _DSML_PARAMETER.at(text, pos, final)
        if isinstance(m, bool):
            return self.wait_or_fail(m or closing is None, pos)
        self.start_value(m.group(1), "string" if m.group(2) == "true" else "json")
        self.state = "value"
        return self.take(m.group(), pos)

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        return self.value_step(text, at, final, "params")


# -- Kimi K3 ---------------------------------------------------------------------------------------------

SEP = "<|sep|>"
_K3_CALL = TagPattern(r'<\|open\|>call\s+tool="([^"<]{1,256})"[^<]{0,128}?<\|sep\|>', SEP)
_K3_ARG = TagPattern(
    r'<\|open\|>argument\s+key="([^"<]{1,256})"(?:\s+type="(\w*)")?[^<]{0,128}?<\|sep\|>', SEP
)
_K3_JSON = TagPattern(r"<\|open\|>json[^<]{0,128}?<\|sep\|>", SEP)
K3_CALL_END = "<|close|>call<|sep|>"
K3_TOOLS_END = "<|close|>tools<|sep|>"
K3_JSON_END = "<|close|>json<|sep|>"


class KimiK3Reader(TaggedReader):
    """`<|open|>tools<|sep|>` holding `<|open|>call tool="f" index="1"<|sep|>` elements whose arguments are
    `<|open|>argument key="k" type="string"<|sep|>v<|close|>argument<|sep|>` tags (typed by the schema,
    else by `type`) or one `<|open|>json type="object"<|sep|>{...}<|close|>json<|sep|>`; then
    `<|close|>call<|sep|>` and `<|close|>tools<|sep|>`. Attribute values are HTML-escaped."""

    RULES = (("<|close|>argument<|sep|>", ("<|open|>argument", K3_CALL_END), False),)
    UNTYPED = "value"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.state = "between"
        self.args: JsonArgs | None = None

    def _between(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        ending = expect(text, pos, K3_TOOLS_END)
        if ending:
            self.end()
            return pos + len(K3_TOOLS_END), False
        m = _K3_CALL.at(text, pos, final)
        if isinstance(m, bool):
            return self.wait_or_fail(m or ending is None, pos)
        if not self.start_call(html.unescape(m.group(1))):
            self.skip_to(K3_TOOLS_END)
        else:
            self.state = "args"
        return self.take(m.group(), pos)

    def _args(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        pos = self.space(text, at)
        closing = expect(text, pos, K3_CALL_END)
        if closing:
            self.keep(K3_CALL_END)
            if self.args is None:
                self.end_call()
            else:
                self.close_completed()
            self.args = None
            self.state = "between"
            return pos + len(K3_CALL_END), False
        if self.args is None and self.writer.count == 0:
            block = _K3_JSON.at(text, pos, final)
            if not isinstance(block, bool):
                self.args = JsonArgs(self)
                self.state = "json"
                return self.take(block.group(), pos)
        m = _K3_ARG.at(text, pos, final) if self.args is None else False
        if isinstance(m, bool):
            return self.wait_or_fail(m or closing is None, pos)
        self.start_value(html.unescape(m.group(1)), m.group(2) or "value")
        self.state = "value"
        return self.take(m.group(), pos)

    def _json(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        assert self.args is not None
        if not self.args.done:
            at, wait = self.args.step(text, at)
            if wait is not None:
                return at, wait
        pos = self.space(text, at)
        found = expect(text, pos, K3_JSON_END)
        if not found:
            return self.wait_or_fail(found is None, pos)
        self.state = "args"
        return self.take(K3_JSON_END, pos)

    def _value(self, text: str, at: int, final: bool) -> tuple[int, bool]:
        return self.value_step(text, at, final, "args")
