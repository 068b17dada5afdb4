"""The API's rate per tenant by plan (saas/throttling.py): one window per tenant, in Redis, shared by its keys and by
every process; over it, a 429 in the envelope that says the limit and when to come back."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from saas.env import env_rate
from saas.throttling import PREFIX
from tenants.models import Role
from tenants.services import tenant_create
from tests.conftest import api_client

API = "/api/v1"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def window_store():
    """The Redis the limiter counts in, with no window left over from an earlier run (tenant ids repeat)."""
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for key in client.scan_iter(f"{PREFIX}:*"):
        client.delete(key)
    return client


@pytest.fixture
def rates(settings, window_store):
    settings.API_RATE_LIMITS = {"basic": (3, 60), "pro": (5, 60)}
    return settings.API_RATE_LIMITS


def answers(client, n: int) -> list[int]:
    return [client.get(f"{API}/contacts/").status_code for _ in range(n)]


def test_a_basic_tenant_over_its_rate_gets_a_429_with_retry_after_and_the_limit(rates, tenant, owner_api):
    assert answers(owner_api, 3) == [200, 200, 200]
    reply = owner_api.get(f"{API}/contacts/")
    assert reply.status_code == 429, reply.content
    error = reply.json()["error"]
    assert error["code"] == "throttled" and "3 requests in 60 s" in error["message"]
    retry = reply["Retry-After"]
    assert retry.isdigit() and 1 <= int(retry) <= 60
    assert error["details"] == {"limit": 3, "window_seconds": 60, "retry_after_seconds": int(retry)}


def test_a_pro_tenant_has_its_own_higher_rate(rates, other_tenant, outsider_api):
    assert other_tenant.plan == "pro"
    assert answers(outsider_api, 6) == [200] * 5 + [429]
    assert outsider_api.get(f"{API}/contacts/").json()["error"]["details"]["limit"] == 5


def test_every_key_of_a_tenant_draws_from_one_window(rates, tenant):
    first, second = api_client(tenant, Role.OWNER), api_client(tenant, Role.MARKETER)
    assert answers(first, 2) + answers(second, 1) == [200, 200, 200]
    assert answers(second, 1) == answers(first, 1) == [429]


def test_tenants_have_windows_of_their_own(rates, tenant, owner_api):
    neighbour = tenant_create(slug="initech", name="Initech", plan="basic", brand_name="Initech", sender_name="Ian")
    assert answers(owner_api, 4) == [200, 200, 200, 429]
    assert answers(api_client(neighbour), 4) == [200, 200, 200, 429]


def test_off_means_no_limit(settings, window_store, tenant, owner_api):
    settings.API_RATE_LIMITS = {"basic": None, "pro": (1, 60)}
    assert answers(owner_api, 12) == [200] * 12
    assert not list(window_store.scan_iter(f"{PREFIX}:*")), "no window is counted when there is no limit"


def test_the_window_lives_in_redis(rates, window_store, tenant, owner_api):
    answers(owner_api, 2)
    calls = f"{PREFIX}:{tenant.pk}:3/60"
    assert window_store.zcard(calls) == 2 and window_store.hget(calls + ":sum", "requests") == b"2"
    assert 0 < window_store.pttl(calls) <= 120_000


def test_another_process_counts_in_the_same_window(rates, tenant, owner_api):
    """A second process (its rate from the environment, as a web process reads it) takes the tenant's third
    request; this one's next is then over the rate."""
    assert answers(owner_api, 2) == [200, 200]
    script = (
        "import django, types; django.setup()\n"
        "from saas.throttling import PlanRateThrottle\n"
        "from rest_framework.exceptions import Throttled\n"
        f"user = types.SimpleNamespace(tenant=types.SimpleNamespace(pk={tenant.pk}, plan='basic'))\n"
        "request = types.SimpleNamespace(user=user)\n"
        "for n in range(2):\n"
        "    try:\n"
        "        print(PlanRateThrottle().allow_request(request, None))\n"
        "    except Throttled as exc:\n"
        "        print('throttled', exc.details['limit'])\n"
    )
    env = {**os.environ, "API_RATE_LIMIT_BASIC": "3/min", "REDIS_URL": django_settings.REDIS_URL,
           "DJANGO_SETTINGS_MODULE": "saas.settings"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["True", "throttled 3"]
    assert answers(owner_api, 1) == [429]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("600/min", (600, 60)), ("10/s", (10, 1)), ("5000/hour", (5000, 3600)), ("2/day", (2, 86400)), ("OFF", None)],
)
def test_a_rate_is_read_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("API_RATE_LIMIT_PRO", raw)
    assert env_rate("API_RATE_LIMIT_PRO", "3000/min") == expected


@pytest.mark.parametrize("raw", ["lots", "0/min", "-5/min", "10/fortnight", "10", "1.5/s"])
def test_a_bad_rate_is_refused(monkeypatch, raw):
    monkeypatch.setenv("API_RATE_LIMIT_BASIC", raw)
    with pytest.raises(ImproperlyConfigured, match="API_RATE_LIMIT_BASIC.*is not a rate"):
        env_rate("API_RATE_LIMIT_BASIC", "600/min")


def test_a_bad_rate_stops_the_settings_from_loading():
    env = {**os.environ, "API_RATE_LIMIT_BASIC": "many/min", "DJANGO_SETTINGS_MODULE": "saas.settings"}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "ImproperlyConfigured: API_RATE_LIMIT_BASIC='many/min' is not a rate" in done.stderr


def test_a_plan_without_a_rate_of_its_own_gets_basics(settings, window_store, other_tenant, outsider_api):
    settings.API_RATE_LIMITS = {"basic": (2, 60)}
    assert answers(outsider_api, 3) == [200, 200, 429]
