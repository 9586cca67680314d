"""A bounded map that forgets its least recently used entry: the caches a `Server` keeps (token counts,
compiled constraints) are all of this shape. Not locked itself: each owner holds its own lock."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    def __init__(self, size: int) -> None:
        self._data: OrderedDict[bytes, V] = OrderedDict()
        self._size = size

    def get(self, key: bytes) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: bytes, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self._size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()
