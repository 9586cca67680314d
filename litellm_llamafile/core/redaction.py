"""A call's secrets in every spelling a server or a library could echo them, and their masking.

A server that echoes the key rarely echoes it as sent: a header value lowercased (`bearer sk-…`), JSON
with `\\u002d` for `-`, a URL with `%2D`, the Basic token's base64. `Secrets.mask` finds each secret in
any letter case; with any of its characters JSON-escaped (`\\u00XX`, however many backslashes), URL-escaped
(`%XX`, also escaped twice as `%25XX`) or an HTML character reference; and inside base64 (standard or
URL-safe, at every alignment, so also within the base64 of `user:password` or of `Bearer <key>`).
Pure; one compiled pattern per set of secrets, and masking is linear in the text.
"""

from __future__ import annotations

import base64
import re
from functools import cached_property

MASK = "***"
# Base64 runs shorter than this are not masked: they would match ordinary text by chance.
_MIN_BASE64 = 8


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

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)

    def found_in(self, text: str) -> bool:
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None


NO_SECRETS = Secrets()
