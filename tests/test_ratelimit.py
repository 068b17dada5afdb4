"""The rate limit per tenant and model: requests and tokens in a sliding window, shared through Redis.
The window is shortened to a second here so the tests are quick; production uses LLM_RATE_WINDOW_MS (61 s)."""

import threading
import time

import pytest
import redis
from django.conf import settings

from routing.ratelimit import Limits, LocalWindow, RateLimiter, RateLimitTimeout, RedisWindow

WINDOW = 1000


@pytest.fixture(params=["redis", "local"])
def make_limiter(request):
    if request.param == "local":
        shared = LocalWindow(WINDOW)  # one process, many threads
        return lambda: RateLimiter(shared)
    client = redis.Redis.from_url(settings.REDIS_URL or "redis://127.0.0.1:6379/15")
    client.delete(*client.keys("llm-rate:test*") or ["none"])
    window = RedisWindow(client, WINDOW)
    return lambda: RateLimiter(window)  # several limiters, one Redis: like several worker hosts


def test_tokens_are_reserved_up_front_and_settled_to_actual_use(make_limiter):
    limiter = make_limiter()
    limits = Limits(tpm=1000)
    first = limiter.acquire(scope="test:a", limits=limits, tokens=800)
    with pytest.raises(RateLimitTimeout):
        limiter.acquire(scope="test:a", limits=limits, tokens=300, timeout=0.1)
    limiter.settle(first, 200)  # the call used far less than its max_tokens
    assert limiter.acquire(scope="test:a", limits=limits, tokens=300, timeout=0.1) is not None
    assert limiter.acquire(scope="test:other", limits=limits, tokens=900, timeout=0.1) is not None  # own budget


def test_requests_per_window(make_limiter):
    limiter = make_limiter()
    for _ in range(3):
        limiter.acquire(scope="test:r", limits=Limits(rpm=3), tokens=1)
    started = time.monotonic()
    limiter.acquire(scope="test:r", limits=Limits(rpm=3), tokens=1)
    assert time.monotonic() - started >= 0.5  # waited for the window to slide


def test_concurrent_callers_on_many_limiters_never_exceed_the_budget_in_any_window(make_limiter):
    limits, granted, lock = Limits(tpm=500), [], threading.Lock()

    def caller():
        limiter = make_limiter()
        for _ in range(4):
            limiter.acquire(scope="test:c", limits=limits, tokens=100, timeout=10)
            with lock:
                granted.append(time.monotonic())

    threads = [threading.Thread(target=caller) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 20
    granted.sort()
    for i, start in enumerate(granted):  # tokens granted in any window of WINDOW ms starting at a grant
        in_window = [t for t in granted[i:] if t - start < WINDOW / 1000 - 0.02]
        assert 100 * len(in_window) <= limits.tpm


def test_unlimited_models_skip_the_limiter(make_limiter):
    assert make_limiter().acquire(scope="test:u", limits=Limits(), tokens=10**9) is None


def test_a_grant_carries_the_windows_own_clock(make_limiter):
    """Usage records take this time, so they and the window agree on which minute a call belongs to."""
    before = time.time()
    reservation = make_limiter().acquire(scope="test:t", limits=Limits(tpm=1000), tokens=10)
    after = time.time()
    assert before - 0.05 <= reservation.granted_ms / 1000 <= after + 0.05
    assert reservation.granted_at.timestamp() == reservation.granted_ms / 1000
