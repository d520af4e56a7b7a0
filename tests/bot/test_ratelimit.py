"""Token buckets: a burst, then the sustained rate; idle buckets are forgotten."""

from __future__ import annotations

from bot.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token at 2/s
    assert bucket.allow() is True
    assert bucket.allow() is False


def test_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10.0, burst=2, clock=clock)
    clock.now += 100
    assert [bucket.allow() for _ in range(3)] == [True, True, False]


def test_sessions_have_separate_buckets_and_idle_ones_are_pruned() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")
    clock.now += 5
    limiter.prune()
    assert len(limiter) == 0
    assert limiter.allow("a")


def test_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(rate=0.0, burst=1)
    assert all(limiter.allow("a") for _ in range(100))
