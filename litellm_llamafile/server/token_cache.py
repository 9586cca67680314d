"""One server's token counts: whole requests, prompt prefixes, and how its prompts may be segmented
(see `flows/counting.py` for how they are used). Thread-safe: async and threaded callers share a server."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..core.lru import LRU

VERIFY_FIRST = 3


CACHE_ENTRIES = 8192  # per server


class TokenCache:
    """One server's counts: whole requests, prompt prefixes, and how its prompts may be segmented.
    Every read and write goes through the lock: async and threaded callers share a server."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._requests = LRU[int](size)  # whole request -> count
        self._prefixes = LRU[int](size)  # rolling hash of the first k segments -> their count
        self.separators: tuple[str, ...] | None = None  # None: not learned yet
        self._verified = 0
        self._segmenting = True

    def request(self, key: bytes | None) -> int | None:
        if key is None:
            return None
        with self._lock:
            return self._requests.get(key)

    def remember(self, keys: Sequence[bytes | None], count: int) -> None:
        with self._lock:
            for key in keys:
                if key is not None:
                    self._requests.put(key, count)

    def longest_prefix(self, keys: Sequence[bytes]) -> tuple[int, int]:
        """(segments, count) of the longest counted run of leading segments, leaving at least one out."""
        with self._lock:
            for k in range(len(keys) - 1, 0, -1):
                hit = self._prefixes.get(keys[k - 1])
                if hit is not None:
                    return k, hit
        return 0, 0

    def remember_prefix(self, key: bytes, count: int) -> None:
        with self._lock:
            self._prefixes.put(key, count)

    @property
    def segmenting(self) -> bool:
        with self._lock:
            return self._segmenting

    def needs_verification(self) -> bool:
        with self._lock:
            return self._segmenting and self._verified < VERIFY_FIRST

    def verified(self, ok: bool) -> None:
        """A segmented count checked against a whole-prompt count; a mismatch turns segmenting off."""
        with self._lock:
            if ok:
                self._verified += 1
            else:
                self._segmenting = False
                self._prefixes.clear()

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._prefixes.clear()
            self.separators = None
            self._verified = 0
            self._segmenting = True
