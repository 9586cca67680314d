"""A call's secrets in every spelling a server or a library could echo them, and their masking.

A server that echoes the key rarely echoes it as sent: a header value lowercased (`bearer sk-…`), JSON
with `\\u002d` for `-`, a URL with `%2D`, the Basic token's base64. `Secrets.mask` finds each secret in
any letter case; with any of its characters JSON-escaped (`\\u00XX`, however many backslashes), URL-escaped
(`%XX`, also escaped twice as `%25XX`) or an HTML character reference; and inside base64 (standard or
URL-safe, at every alignment, so also within the base64 of `user:password` or of `Bearer <key>`).
A secret too short for its base64 to be told from chance text (`llamafile --api-key secret`) is found by
decoding instead: a base64 word whose bytes hold a secret is masked whole.
Pure; one compiled pattern per set of secrets, and masking is linear in the text.
"""

from __future__ import annotations

import base64
import re
from functools import cached_property

MASK = "***"
# Base64 runs shorter than this are not matched as text: they would match ordinary text by chance.
_MIN_BASE64 = 8
# A secret shorter than this (in bytes) has an alignment whose run is under _MIN_BASE64 characters, so
# base64 words are decoded to find it.
_SHORT_SECRET = 8
_URLSAFE = str.maketrans("-_", "+/")


def _char(char: str) -> str:
    """One character of a secret in any spelling (the pattern is case-insensitive)."""
    code = ord(char)
    spellings = [re.escape(char), rf"\\+u{code:04x}", rf"&#0*{code};", rf"&#x0*{code:x};"]
    spellings.append("".join(rf"%(?:25)*{byte:02x}" for byte in char.encode()))
    if code > 0xFFFF:  # JSON spells it as a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        spellings.append(rf"\\+u{high:04x}\\+u{low:04x}")
    return "(?:" + "|".join(spellings) + ")"


def _base64_runs(secret: bytes) -> list[str]:
    """What the secret looks like inside any base64 text: for each of the three alignments it may start
    at, the encoding of its whole 3-byte groups from there (standard and URL-safe alphabets)."""
    runs: list[str] = []
    for start in range(3):
        tail = secret[start:]
        whole = tail[: len(tail) // 3 * 3]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            run = encode(whole).decode()
            if len(run) >= _MIN_BASE64:
                runs.append(run)
    return runs


def _base64_words(shortest: int) -> re.Pattern[str]:
    """Words in either base64 alphabet, with their padding, of at least `shortest` characters."""
    return re.compile(rf"[A-Za-z0-9+/_-]{{{shortest},}}={{0,2}}")


def _decoded(word: str) -> bytes:
    """The bytes a base64 word stands for, lowercased (a header may be lowercased before encoding)."""
    body = word.rstrip("=").translate(_URLSAFE)
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4)).lower()
    except ValueError:  # "+" and "/" mixed with "-" and "_" in one word
        return b""


class Secrets:
    """The secrets of one call (API key, password of api_base), masked in any spelling."""

    def __init__(self, *values: str | None) -> None:
        # Longest first: a secret that contains another is masked whole.
        self.values = tuple(sorted({v for v in values if v}, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self.values)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.values:
            return None
        spelled = ["".join(_char(c) for c in value) for value in self.values]
        runs = {run for value in self.values for run in _base64_runs(value.encode())}
        # Base64 is case-sensitive: a lowercased run decodes to other bytes.
        spelled += [f"(?-i:{re.escape(run)})" for run in sorted(runs, key=len, reverse=True)]
        return re.compile("|".join(spelled), re.IGNORECASE)

    @cached_property
    def _short(self) -> tuple[bytes, ...]:
        encoded = (value.lower().encode() for value in self.values)
        return tuple(value for value in encoded if len(value) < _SHORT_SECRET)

    @cached_property
    def _short_words(self) -> re.Pattern[str] | None:
        if not self._short:
            return None
        # A word shorter than a secret's own base64 cannot hold it.
        return _base64_words(max(2, min(map(len, self._short)) * 4 // 3))

    def _in_base64(self, word: re.Match[str]) -> bool:
        decoded = _decoded(word.group())
        return any(value in decoded for value in self._short)

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        text = pattern.sub(MASK, text)
        words = self._short_words
        if words is None:
            return text
        return words.sub(lambda word: MASK if self._in_base64(word) else word.group(), text)

    def found_in(self, text: str) -> bool:
        pattern = self._pattern
        if pattern is None:
            return False
        if pattern.search(text) is not None:
            return True
        words = self._short_words
        return words is not None and any(map(self._in_base64, words.finditer(text)))


NO_SECRETS = Secrets()
