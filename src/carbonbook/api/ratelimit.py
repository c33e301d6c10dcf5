"""In-process token buckets: a partner's requests per minute, login attempts per client.

One process per database in the demo and tests; behind several workers each process enforces
its own share, which errs on the side of letting a little more through, never less.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def has(self, key: str, per_minute: int, cost: float = 1.0) -> bool:
        """Whether `key`'s bucket holds `cost` tokens, taking none (failures are counted
        after the fact with `allow`)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            return min(float(per_minute), tokens + (now - last) * per_minute / 60.0) >= cost

    def allow(self, key: str, per_minute: int, cost: float = 1.0) -> bool:
        """Take `cost` tokens from `key`'s bucket (capacity `per_minute`) if it has them."""
        now = time.monotonic()
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < cost:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - cost, now)
            return True
