"""The tenant's own admin page: owners change their brand and sender, never their plan, quota or model choices."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenants.models import ApiKey, Role, Tenant
from tenants.services import membership_add

PLATFORM_FIELDS = {"plan": "pro", "monthly_email_quota": "999999", "monthly_budget_usd": "12.50",
                   "model_overrides": '{"marketing_email": "bedrock/nova-pro"}'}  # fmt: skip


def change_post(tenant: Tenant, **changes) -> dict:
    """The tenant change form as the browser posts it (with its membership inline), plus `changes`."""
    data = {"slug": tenant.slug, "name": tenant.name, "plan": tenant.plan, "brand_name": "Acme Prime",
            "recommender": tenant.recommender, "guardrail_use": tenant.guardrail_use, "model_overrides": "{}",
            "monthly_email_quota": str(tenant.monthly_email_quota or ""), "personalize_exported_through": "0",
            "timezone": tenant.timezone, "send_rate_per_second": str(tenant.send_rate_per_second),
            "frequency_cap": str(tenant.frequency_cap), "frequency_period_days": str(tenant.frequency_period_days),
            "frequency_cap_action": tenant.frequency_cap_action,
            "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"}  # fmt: skip
    return {**data, **changes}


@pytest.fixture
def owner_client(tenant):
    client = Client()
    client.force_login(membership_add(tenant=tenant, username="olga", role=Role.OWNER).user)
    return client


def test_owner_sees_plan_quota_and_overrides_read_only(owner_client, tenant):
    page = owner_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])).content.decode()
    assert 'name="brand_name"' in page
    for name in PLATFORM_FIELDS:
        assert f'name="{name}"' not in page, name


def test_owner_cannot_change_plan_quota_or_overrides(owner_client, tenant):
    before = Tenant.objects.values("plan", "monthly_email_quota", "model_overrides").get(pk=tenant.pk)
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    response = owner_client.post(url, change_post(tenant, **PLATFORM_FIELDS))
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    assert tenant.brand_name == "Acme Prime"  # what an owner may change is saved
    assert Tenant.objects.values("plan", "monthly_email_quota", "model_overrides").get(pk=tenant.pk) == before


def test_platform_staff_change_plan_quota_and_overrides(tenant):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    response = client.post(url, change_post(tenant, **PLATFORM_FIELDS, override_reason="trial of Nova Pro"))
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant.refresh_from_db()
    assert (tenant.plan, tenant.monthly_email_quota, str(tenant.monthly_budget_usd), tenant.model_overrides) == (
        "pro",
        999999,
        "12.50",
        {"marketing_email": "bedrock/nova-pro"},
    )


def test_the_api_keys_page_without_keys_says_what_a_key_is_for_and_how_to_make_one(owner_client, tenant, db):
    url = reverse("admin:tenants_apikey_changelist")
    page = owner_client.get(url).content.decode()
    assert "No API keys yet" in page and "/api/v1/" in page and "shown <strong>once</strong>" in page
    assert f'href="{reverse("admin:tenants_apikey_add")}">add an API key</a>' in page
    assert "Authorization: Bearer &lt;key&gt;" in page

    reviewer = Client()
    reviewer.force_login(membership_add(tenant=tenant, username="rev", role=Role.REVIEWER).user)
    assert "ask an owner of the tenant to add one" in reviewer.get(url).content.decode()

    ApiKey.objects.issue(tenant=tenant, name="crm", role=Role.MARKETER)
    listed = owner_client.get(url).content.decode()
    assert "No API keys yet" not in listed and ">crm<" in listed


def test_revoking_a_key_in_the_admin_records_who(owner_client, tenant):
    key, plain = ApiKey.objects.issue(tenant=tenant, name="crm", role=Role.MARKETER)
    url = reverse("admin:tenants_apikey_change", args=[key.pk])
    form = {"tenant": tenant.pk, "name": "crm", "role": Role.MARKETER, "scope": key.scope}
    page = owner_client.get(url).content.decode()
    assert 'name="revoke"' in page and "cannot be restored" in page
    before = timezone.now()
    revoked = owner_client.post(url, {**form, "revoke": "on"})
    assert revoked.status_code == 302, revoked.content.decode()[:2000]
    key.refresh_from_db()
    assert key.revoked_at >= before and key.revoked_by == "admin:olga"
    assert ApiKey.objects.authenticate(plain) is None
    page = owner_client.get(url).content.decode()
    assert "admin:olga" in page and 'name="revoke"' not in page  # shown, read-only; nothing to revoke again


def test_a_revoked_key_cannot_be_given_back_in_the_admin(owner_client, tenant):
    """A key is revoked because it leaked or its holder left: clearing its revocation time in the admin brought it
    back to life. Revocation is final (issue a new key instead), as through the API."""
    key, plain = ApiKey.objects.issue(tenant=tenant, name="leaked", role=Role.MARKETER)
    assert key.revoke(actor="api-key:ops")
    url = reverse("admin:tenants_apikey_change", args=[key.pk])
    form = {"tenant": tenant.pk, "name": "leaked", "role": Role.MARKETER, "scope": key.scope}
    owner_client.post(url, {**form, "revoked_at_0": "", "revoked_at_1": "", "revoke": ""})
    fresh = ApiKey.objects.get(pk=key.pk)
    assert (fresh.revoked_at, fresh.revoked_by) == (key.revoked_at, "api-key:ops")
    assert ApiKey.objects.authenticate(plain) is None
    assert 'name="revoked_at_0"' not in owner_client.get(url).content.decode()


def test_keys_are_revoked_in_bulk_from_the_list(owner_client, tenant):
    keys = [ApiKey.objects.issue(tenant=tenant, name=f"k{i}", role=Role.MARKETER)[0] for i in range(3)]
    assert keys[0].revoke(actor="api-key:ops")
    changelist = reverse("admin:tenants_apikey_changelist")
    answer = owner_client.post(changelist, {"action": "revoke_keys", "_selected_action": [k.pk for k in keys[:2]]},
                               follow=True)  # fmt: skip
    assert answer.status_code == 200 and "Revoked 1 API key" in answer.content.decode()
    states = {k.name: (k.revoked_by, k.revoked_at is not None) for k in ApiKey.objects.filter(tenant=tenant)}
    assert states == {"k0": ("api-key:ops", True), "k1": ("admin:olga", True), "k2": ("", False)}


def test_the_admin_names_api_keys_as_people_write_them(owner_client, tenant):
    pages = [owner_client.get(reverse(name)).content.decode()
             for name in ("admin:index", "admin:tenants_apikey_changelist", "admin:tenants_apikey_add")]  # fmt: skip
    assert all("Api key" not in page for page in pages)
    index, changelist, add = pages
    assert ">API keys<" in index and "Select API key to change" in changelist and "Add API key" in add
