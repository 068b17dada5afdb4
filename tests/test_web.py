"""The web side: unsubscribe links, the admin's tenant scoping and review screen, and the health check."""

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from campaigns import generation, services
from campaigns.models import Campaign, EmailStatus, GeneratedEmail, PromptTemplate
from campaigns.unsubscribe import unsubscribe_url
from datasets.models import Contact
from tenants.scoping import TenantOwned
from tenants.services import membership_add


def test_unsubscribe_link_confirms_then_unsubscribes(client, tenant, catalog):
    contact = catalog[0][0]
    path = re.sub(r"^https?://[^/]+", "", unsubscribe_url(tenant.pk, contact.pk))
    page = client.get(path)
    assert page.status_code == 200 and contact.email in page.content.decode()
    contact.refresh_from_db()
    assert not contact.unsubscribed  # a GET (link scanners) changes nothing
    assert client.post(path).status_code == 200
    contact.refresh_from_db()
    assert contact.unsubscribed and contact.unsubscribed_at


def test_one_click_unsubscribe_works_without_csrf(tenant, catalog):
    contact = catalog[0][1]
    path = re.sub(r"^https?://[^/]+", "", unsubscribe_url(tenant.pk, contact.pk))
    response = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Contact.objects.for_tenant(tenant).get(pk=contact.pk).unsubscribed


def test_forged_or_cross_tenant_unsubscribe_tokens_are_404(client, tenant, other_tenant, catalog):
    contact = catalog[0][0]
    good = unsubscribe_url(tenant.pk, contact.pk)
    assert client.get(reverse("unsubscribe", args=["garbage"])).status_code == 404
    assert client.get(re.sub(r"/u/([^/]+)/", lambda m: f"/u/{m.group(1)[:-2]}xx/", good)).status_code == 404
    wrong_tenant = re.sub(r"^https?://[^/]+", "", unsubscribe_url(other_tenant.pk, contact.pk))
    assert client.get(wrong_tenant).status_code == 404


def test_every_model_is_in_the_admin():
    from django.apps import apps

    for app in ("tenants", "datasets", "recommendations", "routing", "campaigns"):
        for model in apps.get_app_config(app).get_models():
            assert admin.site.is_registered(model), model


@pytest.fixture
def both_emails(bedrock_settings, tenant, other_tenant, catalog, other_catalog):
    emails = []
    for t in (tenant, other_tenant):
        PromptTemplate.dangerously_unscoped.create(
            tenant=t, name=f"{t.slug} template", body="Hi {{ contact.first_name }}"
        )
        campaign = Campaign.dangerously_unscoped.create(tenant=t, name=f"{t.slug} picks")
        run = services.campaign_launch(campaign=campaign, limit=1)
        for chunk in services.run_start(run=run, limit=1):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
        emails.append(GeneratedEmail.objects.for_tenant(t).get(run=run))
    return emails


ADMIN_MODELS = [
    ("datasets", "contact"),
    ("datasets", "item"),
    ("datasets", "interaction"),
    ("campaigns", "prompttemplate"),
    ("campaigns", "campaign"),
    ("campaigns", "campaignrun"),
    ("campaigns", "generatedemail"),
    ("routing", "llmcall"),
]


@pytest.mark.parametrize("app, model", ADMIN_MODELS)
def test_admin_shows_only_the_members_tenant(staff_client, both_emails, app, model):
    from django.apps import apps

    mine, theirs = both_emails
    listing = staff_client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert listing.status_code == 200
    klass = apps.get_model(app, model)
    their_row = klass.dangerously_unscoped.filter(tenant=theirs.tenant).first()
    my_row = klass.dangerously_unscoped.filter(tenant=mine.tenant).first()
    assert (
        staff_client.get(reverse(f"admin:{app}_{model}_change", args=[their_row.pk])).status_code == 302
    )  # "doesn't exist"
    assert staff_client.get(reverse(f"admin:{app}_{model}_change", args=[my_row.pk])).status_code == 200


def test_admin_review_edit_then_approve(staff_client, both_emails):
    mine, _ = both_emails
    url = reverse("admin:campaigns_generatedemail_change", args=[mine.pk])
    response = staff_client.post(
        url, {"subject": "Better subject", "body": "Better body.", "decision": "", "reason": ""}
    )
    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.subject, mine.status, mine.edited, mine.reviewed_by) == (
        "Better subject",
        EmailStatus.APPROVED,
        True,
        "rita",
    )


def test_admin_reject_needs_a_reason(staff_client, both_emails):
    mine, _ = both_emails
    url = reverse("admin:campaigns_generatedemail_change", args=[mine.pk])
    staff_client.post(url, {"subject": mine.subject, "body": mine.body, "decision": "reject", "reason": ""})
    mine.refresh_from_db()
    assert mine.status == EmailStatus.DRAFT
    staff_client.post(url, {"subject": mine.subject, "body": mine.body, "decision": "reject", "reason": "off brand"})
    mine.refresh_from_db()
    assert (mine.status, mine.reject_reason) == (EmailStatus.REJECTED, "off brand")


def test_every_tenant_owned_model_has_the_fail_closed_manager():
    from django.apps import apps

    for model in apps.get_models():
        if issubclass(model, TenantOwned):
            assert type(model._default_manager).__name__ == "TenantScopedManager", model


def test_health_check(client, db):
    assert client.get("/healthz").json() == {"ok": True}


@pytest.mark.parametrize("model", ["tenant", "membership", "apikey"])
def test_account_admin_is_scoped_and_owner_only(staff_client, tenant, other_tenant, model):
    from tenants.models import ApiKey, Membership, Tenant

    ApiKey.objects.issue(tenant=other_tenant, name="their key")
    membership_add(tenant=other_tenant, username="gil")
    theirs = {"tenant": other_tenant, "membership": Membership.objects.get(tenant=other_tenant),
              "apikey": ApiKey.objects.get(tenant=other_tenant)}[model]  # fmt: skip
    listing = staff_client.get(reverse(f"admin:tenants_{model}_changelist"))
    assert listing.status_code == 200 and str(theirs) not in listing.content.decode()
    assert staff_client.get(reverse(f"admin:tenants_{model}_change", args=[theirs.pk])).status_code == 302
    mine = {"tenant": tenant, "membership": Membership.objects.get(tenant=tenant), "apikey": None}[model]
    if mine is not None:  # rita is a marketer: she may look, not change
        page = staff_client.get(reverse(f"admin:tenants_{model}_change", args=[mine.pk]))
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert Tenant.objects.count() == 2
