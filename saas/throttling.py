"""The API's rate per tenant, by plan (settings.API_RATE_LIMITS): every key of a tenant draws from one window,
counted in Redis by the sliding-window limiter of routing/ratelimit.py, so every web process shares it (in-process
without Redis). Over the rate, a 429 in the envelope with `Retry-After` and the limit in `details`."""

import threading
import uuid

from django.conf import settings
from rest_framework import exceptions, throttling

from routing.ratelimit import Limits, LocalWindow, RedisWindow

PREFIX = "api-rate"


class RateLimited(exceptions.Throttled):
    def __init__(self, wait: float, *, limit: int, period: int):
        super().__init__(wait)
        self.detail = f"More than {limit} requests in {period} s for this account; retry in {self.wait} s."
        self.details = {"limit": limit, "window_seconds": period, "retry_after_seconds": self.wait}


def tenant_rate(plan: str) -> tuple[int, int] | None:
    """(requests, seconds) for a tenant on this plan, or None for no limit; a plan not named gets Basic's."""
    rates = settings.API_RATE_LIMITS
    return rates[plan] if plan in rates else rates.get("basic")


class PlanRateThrottle(throttling.BaseThrottle):
    def allow_request(self, request, view) -> bool:
        tenant = getattr(request.user, "tenant", None)
        rate = tenant_rate(tenant.plan) if tenant is not None else None
        if rate is None:
            return True
        limit, period = rate
        budget = {f"{PREFIX}:{tenant.pk}:{limit}/{period}": Limits(rpm=limit)}
        # One token per request (no token limit): the script frees expired tokens with HINCRBY -n, and Lua's -0
        # is not an integer to Redis.
        granted, wait_ms = _window(period).try_acquire(budget, 1, uuid.uuid4().hex)
        if not granted:
            # Raised rather than returned, so the answer can say which limit: DRF's own 429 only knows the wait.
            raise RateLimited(wait_ms / 1000, limit=limit, period=period)
        return True


_windows: dict[int, RedisWindow | LocalWindow] = {}
_lock = threading.Lock()


def _window(period: int) -> RedisWindow | LocalWindow:
    """The process's window of `period` seconds: on Redis when REDIS_URL is set."""
    with _lock:
        if period not in _windows:
            if settings.REDIS_URL:
                import redis

                _windows[period] = RedisWindow(redis.Redis.from_url(settings.REDIS_URL), period * 1000)
            else:
                _windows[period] = LocalWindow(period * 1000)
        return _windows[period]
