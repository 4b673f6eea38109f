"""A token bucket: at most *rate* messages per second, with bursts up to *burst*."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Blocks in acquire() just long enough to keep to the rate.

    Asking for more tokens than the bucket holds (a SendGrid request of 1000
    personalizations against a burst of 10) is allowed: the bucket goes into debt
    and the caller waits until the debt is paid, so the long-run rate holds.
    The clock and sleep are injectable so tests run without waiting.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive; use no limiter for no limit")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self, count: int = 1) -> float:
        """Take *count* tokens, sleeping if there are too few; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= count
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class Unlimited:
    """The limiter when no rate is configured."""

    def acquire(self, count: int = 1) -> float:
        return 0.0


Limiter = RateLimiter | Unlimited


def limiter_for(rate: float, *, burst: float | None = None) -> Limiter:
    """A RateLimiter for a positive rate, Unlimited for 0."""
    return RateLimiter(rate, burst) if rate > 0 else Unlimited()
