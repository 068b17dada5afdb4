"""The rate limit per AWS account, region and model, with each tenant's share on top: requests and tokens in a
sliding window, shared through Redis.
The window is shortened to a second here so the tests are quick; production uses LLM_RATE_WINDOW_MS (61 s)."""

import threading
import time

import pytest
import redis
from django.conf import settings

from routing import ratelimit
from routing.catalog import get_model
from routing.gateway import rate_budgets
from routing.ratelimit import Limits, LocalWindow, RateLimiter, RateLimitTimeout, RedisWindow
from tenants.services import tenant_create
from tests.llm import llm_call

WINDOW = 1000
REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["redis", "local"])
def make_limiter(request):
    if request.param == "local":
        shared = LocalWindow(WINDOW)  # one process, many threads
        return lambda: RateLimiter(shared)
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.keys("llm-rate:*") or ["none"])
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


# Budgets as Bedrock meters them: per AWS account, region and model, with each tenant's share of a shared account
NOVA = "bedrock/nova-lite"


@pytest.fixture
def quota(settings):
    """The model's quota in one account: 1,000 tokens a window, half of it for any one tenant on the platform's."""
    settings.LLM_RATE_LIMITS = {NOVA: {"tpm": 1000}}
    settings.LLM_TENANT_SHARE = 0.5
    return settings


def take(limiter, tenant, tokens, timeout=10.0):
    budgets = rate_budgets(tenant=tenant, spec=get_model(NOVA))
    return limiter.acquire(**budgets, tokens=tokens, timeout=timeout)


@pytest.fixture
def third_tenant(db):
    return tenant_create(slug="initech", name="Initech", plan="basic")


@pytest.fixture
def own_account(db):
    own = tenant_create(slug="umbrella", name="Umbrella", plan="pro")
    own.aws_role_arn, own.aws_external_id = "arn:aws:iam::222233334444:role/MailsaasAccess", "umbrella-1"
    return own


def test_tenants_on_the_platform_account_share_its_budget(make_limiter, quota, tenant, other_tenant, third_tenant):
    limiter = make_limiter()
    take(limiter, tenant, 500)
    take(limiter, other_tenant, 500)
    with pytest.raises(RateLimitTimeout):  # each is within its share, but the account's minute is spent
        take(limiter, third_tenant, 100, timeout=0.1)


def test_one_tenant_alone_cannot_take_more_than_its_share(make_limiter, quota, tenant, other_tenant):
    limiter = make_limiter()
    take(limiter, tenant, 500)
    with pytest.raises(RateLimitTimeout):
        take(limiter, tenant, 100, timeout=0.1)
    # The refusal left nothing behind in the account's budget: the other tenant still gets all of its share.
    assert take(limiter, other_tenant, 500, timeout=0.1) is not None


def test_a_tenant_with_its_own_account_has_its_own_budget(make_limiter, quota, tenant, other_tenant, own_account):
    limiter = make_limiter()
    take(limiter, tenant, 500)
    take(limiter, other_tenant, 500)
    assert take(limiter, own_account, 900, timeout=0.1) is not None  # its whole account: no one to share with
    with pytest.raises(RateLimitTimeout):
        take(limiter, own_account, 200, timeout=0.1)
    tenant.aws_region = "eu-west-1"  # another region is another quota
    assert take(limiter, tenant, 500, timeout=0.1) is not None


def test_the_gateway_keeps_a_tenant_within_its_share(bedrock_settings, tenant, monkeypatch):
    bedrock_settings.LLM_RATE_LIMITS = {NOVA: {"rpm": 2}}
    bedrock_settings.LLM_TENANT_SHARE = 0.5
    bedrock_settings.LLM_RATE_WINDOW_MS = WINDOW
    monkeypatch.setattr(ratelimit, "_limiter", None)  # built again from these settings, on this Redis
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*client.keys("llm-rate:*") or ["none"])
    started = time.monotonic()
    for _ in range(2):
        llm_call(tenant=tenant, task="marketing_email", system="be brief", prompt="Say hello", max_tokens=50)
    assert time.monotonic() - started >= 0.5  # the second call waited for the window: one call a window each
