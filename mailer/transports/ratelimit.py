"""A token bucket: at most *rate* messages per second, with bursts up to *burst*.

A wait ends early when the send is asked to stop (``should_stop``):
:meth:`RateLimiter.acquire` then raises :class:`StopWaiting`, and the transport
hands nothing more over (its remaining recipients fail with :data:`NOT_HANDED_OVER`,
to be sent by the next run). So a rate-limited send stops within a second of SIGTERM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

NOT_HANDED_OVER = "not handed over: the send was asked to stop first"
_POLL = 0.2  # how often a wait looks whether the send was asked to stop


class StopWaiting(Exception):
    """The send was asked to stop while a rate limit made it wait: hand nothing more over."""


def _never() -> bool:
    return False


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
        should_stop: Callable[[], bool] = _never,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive; use no limiter for no limit")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock, self._sleep, self._should_stop = clock, sleep, should_stop
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
            self._wait(wait)
        return wait

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, a little at a time, unless the send is asked to stop meanwhile."""
        while seconds > 0:
            if self._should_stop():
                raise StopWaiting()
            step = min(seconds, _POLL)
            self._sleep(step)
            seconds -= step


class Unlimited:
    """The limiter when no rate is configured."""

    def acquire(self, count: int = 1) -> float:
        return 0.0


Limiter = RateLimiter | Unlimited


def limiter_for(
    rate: float, *, burst: float | None = None, should_stop: Callable[[], bool] = _never
) -> Limiter:
    """A RateLimiter for a positive rate, Unlimited for 0."""
    return RateLimiter(rate, burst, should_stop=should_stop) if rate > 0 else Unlimited()
