"""A distributed rate limit as Bedrock meters it, per AWS account, region and model, with a tenant's share of a
shared account on top (see routing.gateway.rate_budgets): requests and tokens per minute, counted over a
sliding window of settings.LLM_RATE_WINDOW_MS (61 s by default). The window is a second longer than Bedrock's
minute because Bedrock meters a call when it arrives, a varying moment after we grant it: with exactly 60 s, a
call granted as an older one leaves our window can still find that one counted in Bedrock's, and get a 429.
A call reserves its prompt estimate plus max_tokens before it starts; once it returns, the reservation is
corrected to the tokens actually used. Redis holds the window, so every worker host shares one budget; without
Redis (the embedded defaults) an in-process window does the same for one process."""

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

WINDOW_MS = 60_000  # only the windows' default (Bedrock's bare minute); limiter() passes LLM_RATE_WINDOW_MS

# A call may have to fit several budgets at once (an account's, and the tenant's share of it); one script checks
# them all and reserves in all or none, so a refusal by one leaves nothing behind in another.
# KEYS: per budget, a sorted set of reservations scored by time (members "id|tokens") and a hash
# {tokens, requests}. ARGV: window_ms, tokens, member, then rpm and tpm per budget. Returns {1, the grant time in
# ms} when granted, else {0, ms to wait}. Redis's clock is the one clock every worker host shares.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, want = tonumber(ARGV[1]), tonumber(ARGV[2])
local wait = 0
for i = 1, #KEYS / 2 do
  local calls, sums = KEYS[2 * i - 1], KEYS[2 * i]
  local rpm, tpm = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local expired = redis.call('ZRANGEBYSCORE', calls, '-inf', now - window)
  local freed = 0
  for _, m in ipairs(expired) do freed = freed + tonumber(string.match(m, '|(%-?%d+)$')) end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', calls, '-inf', now - window)
    redis.call('HINCRBY', sums, 'tokens', -freed)
    redis.call('HINCRBY', sums, 'requests', -#expired)
  end
  local used = tonumber(redis.call('HGET', sums, 'tokens') or '0')
  local count = tonumber(redis.call('HGET', sums, 'requests') or '0')
  if (rpm > 0 and count + 1 > rpm) or (tpm > 0 and used + want > tpm and count > 0) then
    local oldest = redis.call('ZRANGE', calls, 0, 0, 'WITHSCORES')
    local this = 50
    if oldest[2] then this = math.max(tonumber(oldest[2]) + window - now, 1) end
    wait = math.max(wait, this)
  end
end
if wait > 0 then return {0, wait} end
for i = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * i - 1], now, ARGV[3] .. '|' .. want)
  redis.call('HINCRBY', KEYS[2 * i], 'tokens', want)
  redis.call('HINCRBY', KEYS[2 * i], 'requests', 1)
  redis.call('PEXPIRE', KEYS[2 * i - 1], window * 2)
  redis.call('PEXPIRE', KEYS[2 * i], window * 2)
end
return {1, now}
"""

# Replace a reservation by the tokens really used, in each budget where it is still in the window.
_SETTLE = """
for i = 1, #KEYS / 2 do
  local score = redis.call('ZSCORE', KEYS[2 * i - 1], ARGV[1] .. '|' .. ARGV[2])
  if score then
    redis.call('ZREM', KEYS[2 * i - 1], ARGV[1] .. '|' .. ARGV[2])
    redis.call('ZADD', KEYS[2 * i - 1], score, ARGV[1] .. '|' .. ARGV[3])
    redis.call('HINCRBY', KEYS[2 * i], 'tokens', tonumber(ARGV[3]) - tonumber(ARGV[2]))
  end
end
return 1
"""


@dataclass(frozen=True)
class Limits:
    rpm: int = 0  # requests per minute; 0 = unlimited
    tpm: int = 0  # tokens per minute (input + output); 0 = unlimited

    @property
    def unlimited(self) -> bool:
        return not self.rpm and not self.tpm

    def share(self, fraction: float) -> "Limits":
        """A fraction of these limits, never below one request or token where there is a limit."""
        return Limits(*(max(1, int(limit * fraction)) if limit else 0 for limit in (self.rpm, self.tpm)))


@dataclass
class Reservation:
    keys: tuple[str, ...]  # every budget the call was counted in
    member: str
    tokens: int
    granted_ms: int = 0  # when the window counted it (Redis's clock): the time a usage record should carry

    @property
    def granted_at(self) -> datetime:
        return datetime.fromtimestamp(self.granted_ms / 1000, tz=UTC)


class RateLimitTimeout(TimeoutError):
    """No room in the budget within the wait allowed; a TimeoutError, so a task retries it later."""


class RedisWindow:
    def __init__(self, client, window_ms: int = WINDOW_MS):
        self.client, self.window_ms = client, window_ms
        self._acquire = client.register_script(_ACQUIRE)
        self._settle = client.register_script(_SETTLE)

    def try_acquire(self, budgets: dict[str, Limits], tokens: int, member: str) -> tuple[bool, int]:
        """(True, the grant time in ms) or (False, ms to wait): in every budget at once, or in none."""
        keys = [name for key in budgets for name in (key, key + ":sum")]
        limits = [value for each in budgets.values() for value in (each.rpm, each.tpm)]
        granted, value = self._acquire(keys=keys, args=[self.window_ms, tokens, member, *limits])
        return bool(granted), int(value)

    def settle(self, reservation: Reservation, tokens: int) -> None:
        keys = [name for key in reservation.keys for name in (key, key + ":sum")]
        self._settle(keys=keys, args=[reservation.member, reservation.tokens, tokens])


class LocalWindow:
    """The same sliding windows for one process (no Redis)."""

    def __init__(self, window_ms: int = WINDOW_MS):
        self.window_ms = window_ms
        self.lock = threading.Lock()
        self.entries: dict[str, deque] = {}

    def try_acquire(self, budgets: dict[str, Limits], tokens: int, member: str) -> tuple[bool, int]:
        now = _now_ms()
        with self.lock:
            waits = [self._wait(key, limits, tokens, now) for key, limits in budgets.items()]
            if max(waits) > 0:
                return False, max(waits)
            for key in budgets:
                self.entries[key].append([now, member, tokens])
            return True, now

    def _wait(self, key: str, limits: Limits, tokens: int, now: int) -> int:
        """0 if the call fits this budget now, else the ms until its oldest call leaves the window."""
        window = self.entries.setdefault(key, deque())
        while window and window[0][0] <= now - self.window_ms:
            window.popleft()
        used = sum(entry[2] for entry in window)
        if (limits.rpm and len(window) + 1 > limits.rpm) or (limits.tpm and window and used + tokens > limits.tpm):
            return max(window[0][0] + self.window_ms - now, 1)
        return 0

    def settle(self, reservation: Reservation, tokens: int) -> None:
        with self.lock:
            for key in reservation.keys:
                for entry in self.entries.get(key, ()):
                    if entry[1] == reservation.member:
                        entry[2] = tokens


class RateLimiter:
    def __init__(self, window, prefix: str = "llm-rate"):
        self.window, self.prefix = window, prefix  # the prefix keeps each limiter's keys apart in Redis

    def acquire(
        self,
        *,
        scope: str,
        limits: Limits,
        tokens: int,
        timeout: float = 600.0,
        shares: dict[str, Limits] | None = None,
    ) -> Reservation | None:
        """Block until the call fits in the window of `scope` and, at the same time, of every one of `shares`
        (e.g. the tenant's share of an account's budget); a request larger than a whole budget still goes alone."""
        wanted = {scope: limits, **(shares or {})}
        budgets = {f"{self.prefix}:{name}": each for name, each in wanted.items() if not each.unlimited}
        if not budgets:
            return None
        member, deadline = uuid.uuid4().hex, time.monotonic() + timeout
        while True:
            granted, value = self.window.try_acquire(budgets, tokens, member)
            if granted:
                return Reservation(tuple(budgets), member, tokens, granted_ms=value)
            wait_ms = value
            if time.monotonic() + wait_ms / 1000 > deadline:
                raise RateLimitTimeout(f"rate limit {scope}: no room within {timeout:.0f}s")
            time.sleep(min(wait_ms / 1000, 1.0))

    def settle(self, reservation: Reservation | None, tokens: int) -> None:
        if reservation is not None and tokens != reservation.tokens:
            self.window.settle(reservation, tokens)


def _now_ms() -> int:
    return int(time.time() * 1000)


_limiter: RateLimiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> RateLimiter:
    """The process's limiter: on Redis when REDIS_URL is set."""
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            from django.conf import settings

            if settings.REDIS_URL:
                import redis

                _limiter = RateLimiter(
                    RedisWindow(redis.Redis.from_url(settings.REDIS_URL), settings.LLM_RATE_WINDOW_MS)
                )
            else:
                _limiter = RateLimiter(LocalWindow(settings.LLM_RATE_WINDOW_MS))
        return _limiter


_send_limiter: RateLimiter | None = None


def send_limiter() -> RateLimiter:
    """The process's limiter of emails handed over, per tenant per second (campaigns.sending): a window of
    EMAIL_SEND_RATE_WINDOW_MS, on Redis when REDIS_URL is set, so every worker process shares one rate."""
    global _send_limiter
    with _limiter_lock:
        if _send_limiter is None:
            from django.conf import settings

            window_ms = settings.EMAIL_SEND_RATE_WINDOW_MS
            if settings.REDIS_URL:
                import redis

                window = RedisWindow(redis.Redis.from_url(settings.REDIS_URL), window_ms)
            else:
                window = LocalWindow(window_ms)
            _send_limiter = RateLimiter(window, prefix="send-rate")
        return _send_limiter
