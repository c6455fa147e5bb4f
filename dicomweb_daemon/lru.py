"""A bounded map of the most recently used entries, shared by threads: the caches of things a stored
file's UUID names for ever (headers parsed from its JSON, the unwrapped header of a sealed object),
which never need invalidating, only bounding."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class LruCache:
    """At most ``size`` entries; the least recently used goes first. Any thread."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        """The entry of ``key`` (now the most recently used), else ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value):
        """Keep ``value`` for ``key``; return it."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
