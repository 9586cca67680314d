"""A small GBNF reader and random sampler, for the grammars litellm_llamafile.prompt.grammar writes.

It lets the replay tier check a grammar's *language* without a server: every text sampled from the
grammar must be what the grammar promises (a schema-valid call, a thought then a call, ...). It covers
the GBNF the package emits: literals, character classes, rule references, groups, alternation and the
quantifiers ? * + {m} {m,} {m,n}. The live tier proves the same grammars are accepted by llama-server.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

# Characters a class is sampled from: ASCII, JSON-special ones, a few multi-byte ones.
ALPHABET = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\t", "é", "ß", "—", "日"]


@dataclass
class Lit:
    text: str


@dataclass
class Cls:
    chars: list[str]


@dataclass
class Ref:
    name: str


@dataclass
class Seq:
    items: list[object]


@dataclass
class Alt:
    options: list[Seq]


@dataclass
class Rep:
    item: object
    low: int
    high: int | None


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]", "-": "-", "^": "^"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def char(self) -> str:
        """One possibly escaped character of a literal or class."""
        c = self.text[self.pos]
        if c != "\\":
            self.pos += 1
            return c
        e = self.text[self.pos + 1]
        if e == "x":
            value = chr(int(self.text[self.pos + 2 : self.pos + 4], 16))
            self.pos += 4
            return value
        if e == "u":
            value = chr(int(self.text[self.pos + 2 : self.pos + 6], 16))
            self.pos += 6
            return value
        self.pos += 2
        return _ESCAPES[e]

    def alternation(self) -> Alt:
        options = [self.sequence()]
        self.skip()
        while self.pos < len(self.text) and self.text[self.pos] == "|":
            self.pos += 1
            options.append(self.sequence())
            self.skip()
        return Alt(options)

    def sequence(self) -> Seq:
        items: list[object] = []
        while True:
            self.skip()
            if self.pos >= len(self.text) or self.text[self.pos] in "|)":
                return Seq(items)
            items.append(self.postfix(self.atom()))

    def atom(self) -> object:
        c = self.text[self.pos]
        if c == '"':
            self.pos += 1
            out = []
            while self.text[self.pos] != '"':
                out.append(self.char())
            self.pos += 1
            return Lit("".join(out))
        if c == "[":
            self.pos += 1
            negate = self.text[self.pos] == "^"
            self.pos += negate
            ranges: list[tuple[str, str]] = []
            while self.text[self.pos] != "]":
                start = self.char()
                if self.text[self.pos] == "-" and self.text[self.pos + 1] != "]":
                    self.pos += 1
                    ranges.append((start, self.char()))
                else:
                    ranges.append((start, start))
            self.pos += 1
            chars = [ch for ch in ALPHABET if any(a <= ch <= b for a, b in ranges) != negate]
            if not negate:  # a positive class: its own characters, even outside the alphabet
                chars = sorted({*chars, *(a for a, _ in ranges)})
            return Cls(chars)
        if c == "(":
            self.pos += 1
            inner = self.alternation()
            assert self.text[self.pos] == ")", self.text[self.pos :]
            self.pos += 1
            return inner
        m = re.compile(r"[a-zA-Z0-9-]+").match(self.text, self.pos)
        assert m, self.text[self.pos :]
        self.pos = m.end()
        return Ref(m.group())

    def postfix(self, item: object) -> object:
        if self.pos >= len(self.text):
            return item
        c = self.text[self.pos]
        if c in "?*+":
            self.pos += 1
            return Rep(item, 0 if c != "+" else 1, 1 if c == "?" else None)
        m = re.compile(r"\{(\d*)(,?)(\d*)\}").match(self.text, self.pos)
        if m:
            self.pos = m.end()
            low = int(m.group(1) or 0)
            high = int(m.group(3)) if m.group(3) else (None if m.group(2) else low)
            return Rep(item, low, high)
        return item


@dataclass
class Grammar:
    rules: dict[str, Alt]
    _min: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Grammar:
        rules: dict[str, Alt] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            name, body = line.split(" ::= ", 1)
            parser = _Parser(body)
            rules[name.strip()] = parser.alternation()
            assert parser.pos == len(body), f"unparsed: {body[parser.pos :]!r}"
        grammar = cls(rules)
        grammar._minimum_lengths()
        return grammar

    def _minimum_lengths(self) -> None:
        """The shortest text each rule derives (a fixpoint), to end sampling when it runs deep."""
        self._min = {name: 10**9 for name in self.rules}
        changed = True
        while changed:
            changed = False
            for name, alt in self.rules.items():
                value = self.min_len(alt)
                if value < self._min[name]:
                    self._min[name], changed = value, True

    def min_len(self, node: object) -> int:
        if isinstance(node, Lit):
            return len(node.text)
        if isinstance(node, Cls):
            return 1 if node.chars else 10**9
        if isinstance(node, Ref):
            return self._min[node.name]
        if isinstance(node, Seq):
            return sum(self.min_len(i) for i in node.items)
        if isinstance(node, Alt):
            return min(self.min_len(o) for o in node.options)
        assert isinstance(node, Rep)
        return node.low * self.min_len(node.item) if node.low else 0

    def sample(self, rng: random.Random, rule: str = "root", max_depth: int = 8) -> str:
        out: list[str] = []
        self._emit(self.rules[rule], rng, 0, max_depth, out)
        return "".join(out)

    def _emit(self, node: object, rng: random.Random, depth: int, max_depth: int, out: list[str]) -> None:
        deep = depth > max_depth
        if isinstance(node, Lit):
            out.append(node.text)
        elif isinstance(node, Cls):
            assert node.chars, "a character class that matches nothing"
            out.append(rng.choice(node.chars))
        elif isinstance(node, Ref):
            self._emit(self.rules[node.name], rng, depth + 1, max_depth, out)
        elif isinstance(node, Seq):
            for item in node.items:
                self._emit(item, rng, depth, max_depth, out)
        elif isinstance(node, Alt):
            options = [o for o in node.options if self.min_len(o) < 10**9]
            option = min(options, key=self.min_len) if deep else rng.choice(options)
            self._emit(option, rng, depth, max_depth, out)
        else:
            assert isinstance(node, Rep)
            high = node.high if node.high is not None else node.low + 3
            count = node.low if deep else rng.choice([node.low, high, rng.randint(node.low, high)])
            for _ in range(count):
                self._emit(node.item, rng, depth + 1, max_depth, out)


def samples(grammar_text: str, n: int, seed: int = 0) -> list[str]:
    """`n` random texts of the grammar's language (root rule)."""
    grammar = Grammar.parse(grammar_text)
    rng = random.Random(seed)
    return [grammar.sample(rng) for _ in range(n)]
