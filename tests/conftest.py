"""Shared fixtures: two tenants with a cast of personas (owner, marketer, reviewer, outsider), API clients
holding their keys, small datasets, and Django pointed at the local AWS emulator."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from datasets.models import Contact, Interaction, Item
from tenants.models import ApiKey, Role
from tenants.scoping import tenant_scope
from tenants.services import membership_add, tenant_create

pytest_plugins = [
    "tests.fixtures_aws", "tests.fixtures_smtp", "tests.workers", "tests.webhook_receiver", "tests.parallel",
]  # fmt: skip

GENRES = ["Comedy", "Drama", "Horror", "Sci-Fi"]


@pytest.fixture(autouse=True)
def routing_cache_fresh():
    """Each test reads the catalog and plans afresh: a copy cached in an earlier test may hold rows its rolled-back
    transaction wrote."""
    from routing.catalog import invalidate

    invalidate()
    yield
    invalidate()


@pytest.fixture(autouse=True)
def api_rate_high(settings):
    """Tests send many API requests a minute as one tenant: a rate none reaches, unless a test sets its own (still
    counted in Redis, so every API test goes through the throttle)."""
    settings.API_RATE_LIMITS = {"basic": (100_000, 60), "pro": (100_000, 60)}


@pytest.fixture(autouse=True)
def judge_off(settings):
    """The draft judge's calls stay out of other tests' counts and time; tests/test_judge.py turns it on."""
    settings.JUDGE_DRAFTS = False


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Passwords hashed with MD5 in tests: the real PBKDF2 costs ~0.23 s a hash (and a login), and no test checks
    how a password is hashed, only that it signs in."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenant(db):
    return tenant_create(slug="acme", name="Acme Video", plan="basic", brand_name="Acme Video", sender_name="Ana",
                         sender_email="hello@acme.example", postal_address="1 Acme Road, Springfield")  # fmt: skip


@pytest.fixture
def other_tenant(db):
    return tenant_create(slug="globex", name="Globex Films", plan="pro", brand_name="Globex", sender_name="Gil")


def api_client(tenant, role=Role.OWNER) -> APIClient:
    _, plain = ApiKey.objects.issue(tenant=tenant, name=f"{role} key", role=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def owner_api(tenant):
    return api_client(tenant, Role.OWNER)


@pytest.fixture
def reviewer_api(tenant):
    return api_client(tenant, Role.REVIEWER)


@pytest.fixture
def outsider_api(other_tenant):
    """A valid key, but for another tenant."""
    return api_client(other_tenant, Role.OWNER)


def make_catalog(tenant, *, n_contacts=6, n_items=12, seed_offset=0, prefix=""):
    """A small deterministic dataset: contacts who each like one genre, items spread over four genres."""
    contacts = [
        Contact.dangerously_unscoped.create(
            tenant=tenant,
            external_id=f"{prefix}u{i}",
            email=f"{prefix}user{i}@example.com",
            first_name=f"Name{i}",
            last_name="Tester",
            age=20 + i,
            gender="female" if i % 2 else "male",
            locale="en_US",
        )  # fmt: skip
        for i in range(n_contacts)
    ]
    items = [
        Item.dangerously_unscoped.create(
            tenant=tenant,
            external_id=f"{prefix}m{i}",
            title=f"Movie Number {i + seed_offset}",
            year=2000 + i,
            genres=[GENRES[i % 4]],
            plot=f"A story about case {i}.",
        )  # fmt: skip
        for i in range(n_items)
    ]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for ci, contact in enumerate(contacts):
        liked = [it for it in items if it.genres[0] == GENRES[ci % 4]]
        for k, item in enumerate(liked[:2] + items[ci % 3 : ci % 3 + 1]):
            Interaction.dangerously_unscoped.get_or_create(
                tenant=tenant, contact=contact, item=item, event_type="watch",
                timestamp=start + timedelta(days=ci * 3 + k),
            )  # fmt: skip
    return contacts, items


def bulk_catalog(tenant, *, n_contacts: int, n_items: int = 40):
    """A larger dataset, written in bulk: each contact watched three items of one genre."""
    Contact.dangerously_unscoped.bulk_create(
        Contact(tenant=tenant, external_id=f"b{i}", email=f"b{i}@example.com", first_name=f"Bulk{i}", age=30)
        for i in range(n_contacts)
    )
    Item.dangerously_unscoped.bulk_create(
        Item(tenant=tenant, external_id=f"bm{i}", title=f"Bulk Title {i}", genres=[GENRES[i % 4]], plot="A plot.")
        for i in range(n_items)
    )
    contacts = list(Contact.dangerously_unscoped.filter(tenant=tenant).order_by("pk"))
    items = list(Item.dangerously_unscoped.filter(tenant=tenant).order_by("pk"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    Interaction.dangerously_unscoped.bulk_create(
        Interaction(
            tenant=tenant, contact=c, item=items[(ci + 4 * k) % n_items], timestamp=start + timedelta(hours=ci + k)
        )
        for ci, c in enumerate(contacts)
        for k in range(3)
    )
    return contacts


@pytest.fixture
def catalog(tenant):
    return make_catalog(tenant)


@pytest.fixture
def other_catalog(other_tenant):
    return make_catalog(other_tenant, n_contacts=3, n_items=8, seed_offset=100, prefix="g")


@pytest.fixture
def staff_client(tenant):
    """The admin, logged in as a marketer of `tenant` (staff, not a superuser: the tenant scope applies)."""
    membership = membership_add(tenant=tenant, username="rita", role=Role.MARKETER, password="pw-rita-123")
    client = Client()
    client.force_login(membership.user)
    return client


@pytest.fixture
def scoped(tenant):
    with tenant_scope(tenant):
        yield tenant


@pytest.fixture
def bedrock_settings(settings, aws_emulator_env):
    """Route every plan to Bedrock models served by the local emulator, through real boto3 over HTTP."""
    emulator = aws_emulator_env
    settings.LLM_BACKEND = "bedrock"
    settings.AWS_ENDPOINT_URLS = {"bedrock-runtime": emulator.url, "personalize-runtime": emulator.url}
    settings.AWS_MAX_ATTEMPTS = 3
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings
