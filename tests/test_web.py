"""The web side: unsubscribe links, the admin's tenant scoping and review screen, and the health check."""

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from campaigns import generation, services
from campaigns.models import (
    BatchRecord,
    Campaign,
    CampaignTick,
    DeliveryReport,
    EmailEvent,
    EmailStatus,
    EventKind,
    GeneratedEmail,
    PromptTemplate,
)
from campaigns.unsubscribe import unsubscribe_url
from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource, Contact
from recommendations.models import RecommenderConfig
from tenants.admin import TenantScopedAdmin
from tenants.models import Role
from tenants.scoping import TenantOwned
from tenants.services import membership_add, tenant_create
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


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

    for app in ("tenants", "datasets", "recommendations", "routing", "campaigns", "webhooks"):
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


@pytest.fixture
def admin_rows(both_emails):
    """Rows of every tenant-scoped admin page for both tenants: the emails' runs, data and usage, plus a prompt
    still waiting in a batch job and recommender settings."""
    for email in both_emails:
        waiting = Contact.dangerously_unscoped.filter(tenant=email.tenant).exclude(pk=email.contact_id).first()
        BatchRecord.dangerously_unscoped.create(tenant=email.tenant, run=email.run, contact=waiting, fields={})
        CampaignTick.dangerously_unscoped.create(
            tenant=email.tenant, campaign=email.run.campaign, outcome="launched", run=email.run
        )
        RecommenderConfig.dangerously_unscoped.create(tenant=email.tenant)
        contact_unsubscribe(contact=waiting, source=ConsentSource.ADMIN, by="admin:test")
        EmailEvent.record(email, EventKind.REGENERATE_REQUESTED, by="admin:test")
        DeliveryReport.dangerously_unscoped.create(
            tenant=email.tenant, email=email, address=email.contact.email, kind="soft_bounce", provider="test"
        )
        hook = WebhookEndpoint.dangerously_unscoped.create(tenant=email.tenant, url="https://crm.example/hook")
        delivery = WebhookDelivery.dangerously_unscoped.create(
            tenant=email.tenant, endpoint=hook, event_type="email.sent", message_id=f"msg_{email.pk}", payload={}
        )
        WebhookAttempt.dangerously_unscoped.create(tenant=email.tenant, delivery=delivery, status_code=500)
    return both_emails


ADMIN_MODELS = [
    ("datasets", "contact"),
    ("datasets", "item"),
    ("datasets", "interaction"),
    ("datasets", "consentevent"),
    ("datasets", "suppression"),
    ("recommendations", "recommendermodel"),
    ("recommendations", "recommenderconfig"),
    ("campaigns", "prompttemplate"),
    ("campaigns", "campaign"),
    ("campaigns", "campaignrun"),
    ("campaigns", "generatedemail"),
    ("campaigns", "batchrecord"),
    ("campaigns", "emailevent"),
    ("campaigns", "deliveryreport"),
    ("webhooks", "webhookendpoint"),
    ("webhooks", "webhookdelivery"),
    ("webhooks", "webhookattempt"),
    ("campaigns", "campaigntick"),
    ("routing", "llmcall"),
]


def test_every_tenant_scoped_admin_gets_the_cross_tenant_tests():
    scoped = {(m._meta.app_label, m._meta.model_name) for m, ma in admin.site._registry.items()
              if isinstance(ma, TenantScopedAdmin)}  # fmt: skip
    assert scoped == set(ADMIN_MODELS)


@pytest.mark.parametrize("app, model", ADMIN_MODELS)
def test_admin_shows_only_the_members_tenant(staff_client, admin_rows, app, model):
    from django.apps import apps

    mine, theirs = admin_rows
    listing = staff_client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert listing.status_code == 200
    klass = apps.get_model(app, model)
    their_row = klass.dangerously_unscoped.filter(tenant=theirs.tenant).first()
    my_row = klass.dangerously_unscoped.filter(tenant=mine.tenant).first()
    assert (
        staff_client.get(reverse(f"admin:{app}_{model}_change", args=[their_row.pk])).status_code == 404
    )  # not there, as a missing id
    assert staff_client.get(reverse(f"admin:{app}_{model}_change", args=[my_row.pk])).status_code == 200


def filter_panel(page: str) -> str:
    found = re.search(r'<nav id="changelist-filter".*?</nav>', page, re.S)
    return found.group(0) if found else ""


@pytest.mark.parametrize("app, model", ADMIN_MODELS)
def test_admin_changelist_never_names_another_tenant(staff_client, admin_rows, tenant, other_tenant, app, model):
    url = reverse(f"admin:{app}_{model}_changelist")
    popup = url + "?_to_field=id&_popup=1"  # the page a raw-id or "+" lookup opens
    for page in (staff_client.get(url), staff_client.get(popup)):
        assert page.status_code == 200 and other_tenant.name not in page.content.decode()
    # A member of two tenants filters by tenant between just those two.
    membership_add(tenant=tenant_create(slug="initech", name="Initech"), username="rita")
    for page in (staff_client.get(url), staff_client.get(popup)):
        html = page.content.decode()
        assert other_tenant.name not in html
        assert tenant.name in filter_panel(html) and "Initech" in filter_panel(html)


@pytest.mark.parametrize("page", ["membership_add", "tenant_change"])
def test_owner_picks_members_only_among_their_tenants_users(tenant, other_tenant, page):
    from django.contrib.auth.models import Permission

    membership_add(tenant=other_tenant, username="gil-of-globex")
    membership_add(tenant=tenant, username="mo-of-acme")
    owner = membership_add(tenant=tenant, username="olga", role=Role.OWNER).user
    # Django's own permission, which shows the members inline on the tenant's page.
    owner.user_permissions.add(Permission.objects.get(codename="change_membership"))
    client = Client()
    client.force_login(owner)
    url = {"membership_add": reverse("admin:tenants_membership_add"),
           "tenant_change": reverse("admin:tenants_tenant_change", args=[tenant.pk])}[page]  # fmt: skip
    html = client.get(url).content.decode()
    assert "mo-of-acme" in html and "gil-of-globex" not in html


def test_batch_records_are_read_only_in_the_admin(staff_client, admin_rows, tenant):
    membership_add(tenant=tenant, username="rita", role=Role.OWNER)  # an owner, who may delete on other pages
    mine = BatchRecord.dangerously_unscoped.get(tenant=tenant)
    change = reverse("admin:campaigns_batchrecord_change", args=[mine.pk])
    page = staff_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    listing = staff_client.get(reverse("admin:campaigns_batchrecord_changelist")).content.decode()
    assert "delete_selected" not in listing
    assert staff_client.get(reverse("admin:campaigns_batchrecord_add")).status_code == 403
    assert staff_client.post(change, {"fields": "{}", "system": "changed"}).status_code == 403
    delete = reverse("admin:campaigns_batchrecord_delete", args=[mine.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [mine.pk], "post": "yes"}
    staff_client.post(reverse("admin:campaigns_batchrecord_changelist"), bulk)
    mine.refresh_from_db()
    assert mine.system == ""


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


ACCOUNT_ADMIN_MODELS = ["tenant", "membership", "apikey", "quotausage"]


def test_every_account_admin_gets_the_cross_tenant_tests():
    from tenants.admin import OwnersOnlyAdmin

    owned = {m._meta.model_name for m, ma in admin.site._registry.items() if isinstance(ma, OwnersOnlyAdmin)}
    assert owned == set(ACCOUNT_ADMIN_MODELS)


@pytest.mark.parametrize("model", ACCOUNT_ADMIN_MODELS)
def test_account_admin_is_scoped_and_owner_only(staff_client, tenant, other_tenant, model):
    from tenants.models import ApiKey, Membership, QuotaUsage, Tenant
    from tenants.services import quota_month, quota_reserve

    ApiKey.objects.issue(tenant=other_tenant, name="their key")
    membership_add(tenant=other_tenant, username="gil")
    for t, count in ((tenant, 3), (other_tenant, 7)):
        quota_reserve(tenant=t, count=count, month=quota_month())
    theirs = {
        "tenant": other_tenant,
        "membership": Membership.objects.get(tenant=other_tenant),
        "apikey": ApiKey.objects.get(tenant=other_tenant),
        "quotausage": QuotaUsage.objects.get(tenant=other_tenant),
    }[model]
    listing = staff_client.get(reverse(f"admin:tenants_{model}_changelist"))
    assert listing.status_code == 200 and str(theirs) not in listing.content.decode()
    assert staff_client.get(reverse(f"admin:tenants_{model}_change", args=[theirs.pk])).status_code == 404
    mine = {
        "tenant": tenant,
        "membership": Membership.objects.get(tenant=tenant),
        "apikey": None,
        "quotausage": QuotaUsage.objects.get(tenant=tenant),
    }[model]
    if mine is not None:  # rita is a marketer: she may look, not change
        page = staff_client.get(reverse(f"admin:tenants_{model}_change", args=[mine.pk]))
        assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert Tenant.objects.count() == 2
