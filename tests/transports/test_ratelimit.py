"""The token bucket every transport sends through."""

from __future__ import annotations

import pytest

from mailer.transports.ratelimit import RateLimiter, Unlimited, limiter_for


class FakeTime:
    """A clock that only moves when the limiter sleeps (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


class TestRateLimiter:
    def test_burst_is_free(self, time: FakeTime) -> None:
        """Up to the burst size, messages go without waiting."""
        limiter = RateLimiter(10, burst=5, clock=time.clock, sleep=time.sleep)
        for _ in range(5):
            limiter.acquire()
        assert [] == time.slept

    def test_rate_holds_after_the_burst(self, time: FakeTime) -> None:
        """Past the burst, each message waits 1/rate seconds."""
        limiter = RateLimiter(10, burst=1, clock=time.clock, sleep=time.sleep)
        for _ in range(4):
            limiter.acquire()
        assert [pytest.approx(0.1)] * 3 == time.slept

    def test_long_run_rate(self, time: FakeTime) -> None:
        """100 messages at 20 per second take 5 seconds, less the initial burst."""
        limiter = RateLimiter(20, burst=20, clock=time.clock, sleep=time.sleep)
        start = time.now
        for _ in range(100):
            limiter.acquire()
        assert pytest.approx(4.0) == time.now - start

    def test_more_than_the_bucket_holds(self, time: FakeTime) -> None:
        """A request for 1000 at once waits for the tokens it lacks, then the bucket is in debt."""
        limiter = RateLimiter(100, burst=100, clock=time.clock, sleep=time.sleep)
        assert pytest.approx(9.0) == limiter.acquire(1000)
        assert pytest.approx(0.01) == limiter.acquire(1)

    def test_idle_time_refills_up_to_the_burst(self, time: FakeTime) -> None:
        """A long pause refills the bucket, but never beyond the burst."""
        limiter = RateLimiter(10, burst=2, clock=time.clock, sleep=time.sleep)
        limiter.acquire(2)
        time.now += 60
        limiter.acquire(2)
        limiter.acquire(1)
        assert [pytest.approx(0.1)] == time.slept

    def test_rate_must_be_positive(self) -> None:
        """A zero rate is not a limiter; limiter_for gives Unlimited for it instead."""
        with pytest.raises(ValueError):
            RateLimiter(0)

    def test_limiter_for(self) -> None:
        """MAILER_SEND_RATE=0 means no limit; a positive rate means a token bucket."""
        assert (Unlimited, RateLimiter) == (type(limiter_for(0)), type(limiter_for(5)))

    def test_unlimited_never_waits(self) -> None:
        """Without a rate, acquire returns at once."""
        assert 0.0 == Unlimited().acquire(1000)
