"""Roles in the admin, the same as in the API: reviewers review, marketers also change data and run campaigns,
owners also manage members and keys. Every tenant-scoped admin page and every admin action is checked for each
role by real requests; the lists are read from the admin's registry, so a new page or action cannot skip them."""

import json
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from campaigns import generation, services
from campaigns.models import (
    BatchRecord,
    Campaign,
    CampaignRun,
    CampaignTick,
    DeliveryReport,
    EmailEvent,
    EventKind,
    GeneratedEmail,
    PromptTemplate,
)
from datasets.consent import contact_unsubscribe
from datasets.models import ConsentSource, Contact, Suppression
from recommendations.models import RecommenderConfig
from tenants.admin import OwnersOnlyAdmin, TenantScopedAdmin
from tenants.models import Role
from tenants.services import membership_add
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

ROLES = (Role.OWNER, Role.MARKETER, Role.REVIEWER)
DATA = {Role.OWNER: (True, True, True), Role.MARKETER: (True, True, True), Role.REVIEWER: (False, False, False)}
# What each role may do on each page: (add, change, delete).
MATRIX = {
    "datasets.contact": DATA,
    "datasets.item": DATA,
    "datasets.interaction": DATA,
    "campaigns.prompttemplate": DATA,
    "campaigns.campaign": DATA,
    "recommendations.recommenderconfig": DATA,
    # Consent records, usage, trained models: written by the product, never edited; removed by who changes data.
    "datasets.consentevent": dict.fromkeys(ROLES, (False, False, True)) | {Role.REVIEWER: (False, False, False)},
    "recommendations.recommendermodel": dict.fromkeys(ROLES, (False, False, True))
    | {Role.REVIEWER: (False, False, False)},
    "routing.llmcall": dict.fromkeys(ROLES, (False, False, True)) | {Role.REVIEWER: (False, False, False)},
    # A run's page has no field to edit for anyone, so no Save button; removing a run is changing data.
    "campaigns.campaignrun": dict.fromkeys(ROLES, (False, False, True)) | {Role.REVIEWER: (False, False, False)},
    # Reviewing is editing a draft: every role; removing an email is changing data.
    "campaigns.generatedemail": dict.fromkeys(ROLES, (False, True, True)) | {Role.REVIEWER: (False, True, False)},
    "campaigns.batchrecord": dict.fromkeys(ROLES, (False, False, False)),
    # The audit log: written by the product, never edited or removed by anyone.
    "campaigns.emailevent": dict.fromkeys(ROLES, (False, False, False)),
    # What providers reported (delivered, bounced, complained of): a record, for every role to read only.
    "campaigns.deliveryreport": dict.fromkeys(ROLES, (False, False, False)),
    # Webhook endpoints are the tenant's data; their deliveries and attempts a record, read only by everyone.
    "webhooks.webhookendpoint": DATA,
    "webhooks.webhookdelivery": dict.fromkeys(ROLES, (False, False, False)),
    "webhooks.webhookattempt": dict.fromkeys(ROLES, (False, False, False)),
    # The suppression list: who changes data adds an address by hand; a row is a record, never edited or removed.
    "datasets.suppression": {
        Role.OWNER: (True, False, False),
        Role.MARKETER: (True, False, False),
        Role.REVIEWER: (False, False, False),
    },  # fmt: skip
    # What each firing of a campaign's schedule did: a record, for every role to read only.
    "campaigns.campaigntick": dict.fromkeys(ROLES, (False, False, False)),
}
REVIEW, RUN, DATA_ROLES = set(ROLES), {Role.OWNER, Role.MARKETER}, {Role.OWNER, Role.MARKETER}
# Who may use each admin action (delete_selected follows the delete column above).
ACTIONS = {
    "campaigns.campaign": {"launch": RUN},
    "campaigns.campaignrun": {"send_approved": RUN, "cancel": RUN},
    "campaigns.generatedemail": {
        "approve": REVIEW,
        "regenerate": REVIEW,
        "send_now": RUN,
        "mark_sent": RUN,
        "send_again": RUN,
    },  # fmt: skip
    "datasets.contact": {"unsubscribe_selected": DATA_ROLES},
    "webhooks.webhookendpoint": {"ping_selected": DATA_ROLES, "enable_selected": DATA_ROLES},
}

TENANT_ADMINS = sorted(
    f"{m._meta.app_label}.{m._meta.model_name}"
    for m, ma in admin.site._registry.items()
    if isinstance(ma, TenantScopedAdmin)
)


def test_every_tenant_scoped_admin_and_action_is_in_the_matrix():
    assert set(MATRIX) == set(TENANT_ADMINS) and set(ACCOUNT_MATRIX) == set(ACCOUNT_ADMINS)
    for label in TENANT_ADMINS:
        model_admin = admin.site._registry[apps.get_model(label)]
        assert set(model_admin.actions or ()) == set(ACTIONS.get(label, {})), label


@pytest.fixture
def rows(bedrock_settings, tenant, other_tenant, catalog, other_catalog):
    """A row of every tenant-scoped admin page in both tenants: a generated email (with its run, usage and trained
    model), a template, a prompt waiting in a batch job, recommender settings and a consent record."""
    for t in (tenant, other_tenant):
        PromptTemplate.dangerously_unscoped.create(tenant=t, name=f"{t.slug} template", body="Hi")
        campaign = Campaign.dangerously_unscoped.create(tenant=t, name=f"{t.slug} picks")
        run = services.campaign_launch(campaign=campaign, limit=1)
        for chunk in services.run_start(run=run, limit=1):
            generation.run_generate_chunk(run=run, contact_ids=chunk)
        email = GeneratedEmail.objects.for_tenant(t).get(run=run)
        waiting = Contact.dangerously_unscoped.filter(tenant=t).exclude(pk=email.contact_id).first()
        BatchRecord.dangerously_unscoped.create(tenant=t, run=run, contact=waiting, fields={})
        CampaignTick.dangerously_unscoped.create(tenant=t, campaign=campaign, outcome="launched", run=run)
        RecommenderConfig.dangerously_unscoped.create(tenant=t)
        contact_unsubscribe(contact=waiting, source=ConsentSource.ADMIN, by="admin:test")  # also a Suppression
        EmailEvent.record(email, EventKind.REGENERATE_REQUESTED, by="admin:test")
        DeliveryReport.dangerously_unscoped.create(
            tenant=email.tenant, email=email, address=email.contact.email, kind="soft_bounce", provider="test"
        )
        hook = WebhookEndpoint.dangerously_unscoped.create(tenant=email.tenant, url="https://crm.example/hook")
        delivery = WebhookDelivery.dangerously_unscoped.create(
            tenant=email.tenant, endpoint=hook, event_type="email.sent", message_id=f"msg_{email.pk}", payload={}
        )
        WebhookAttempt.dangerously_unscoped.create(tenant=email.tenant, delivery=delivery, status_code=500)


def login(tenant, role, username=None) -> Client:
    client = Client()
    client.force_login(membership_add(tenant=tenant, username=username or f"{role}-user", role=role).user)
    return client


def snapshot() -> dict:
    """Every tenant-scoped row, to show that a refused request changed nothing."""
    return {label: list(apps.get_model(label).dangerously_unscoped.order_by("pk").values()) for label in TENANT_ADMINS}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", TENANT_ADMINS)
def test_each_role_adds_changes_and_deletes_only_what_it_may(rows, tenant, role, label):
    may_add, may_change, may_delete = MATRIX[label][role]
    client, app, model = login(tenant, role), *label.split(".")
    row = apps.get_model(label).dangerously_unscoped.filter(tenant=tenant).order_by("pk").first()
    listing = client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert listing.status_code == 200
    add_url = reverse(f"admin:{app}_{model}_add")
    assert (f'href="{add_url}"' in listing.content.decode()) is may_add
    assert client.get(add_url).status_code == (200 if may_add else 403)
    change_url = reverse(f"admin:{app}_{model}_change", args=[row.pk])
    page = client.get(change_url)
    assert page.status_code == 200 and ('name="_save"' in page.content.decode()) is may_change
    delete_url = reverse(f"admin:{app}_{model}_delete", args=[row.pk])
    assert client.get(delete_url).status_code == (200 if may_delete else 403)
    assert ('value="delete_selected"' in listing.content.decode()) is may_delete
    before = snapshot()
    if not may_add:
        assert client.post(add_url, {"tenant": tenant.pk, "name": "forged"}).status_code == 403
    if not may_change:
        assert client.post(change_url, {"name": "forged", "subject": "forged"}).status_code == 403
    if not may_delete:
        assert client.post(delete_url, {"post": "yes"}).status_code == 403
        bulk = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
        client.post(reverse(f"admin:{app}_{model}_changelist"), bulk)
    assert snapshot() == before


ACTION_CASES = [(label, name, role) for label, names in ACTIONS.items() for name in names for role in ROLES]


@pytest.mark.parametrize("label, name, role", ACTION_CASES)
def test_each_action_is_offered_to_and_run_by_only_the_roles_it_names(
    rows, tenant, label, name, role, django_capture_on_commit_callbacks
):
    allowed = role in ACTIONS[label][name]
    client, (app, model) = login(tenant, role), label.split(".")
    url = reverse(f"admin:{app}_{model}_changelist")
    assert (f'<option value="{name}">' in client.get(url).content.decode()) is allowed
    if allowed:
        return
    mine = list(apps.get_model(label).dangerously_unscoped.filter(tenant=tenant).values_list("pk", flat=True))
    before = snapshot()
    with django_capture_on_commit_callbacks() as dispatched:
        page = client.post(url, {"action": name, "_selected_action": mine, "index": 0}, follow=True)
    assert page.status_code == 200 and "does not allow" in page.content.decode()
    assert snapshot() == before and dispatched == []


def test_a_forged_action_is_refused_inside_the_action_too(rows, tenant):
    """Even called past the changelist's own check (get_actions), each action checks the role itself."""
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.test import RequestFactory

    reviewer = membership_add(tenant=tenant, username="vera", role=Role.REVIEWER).user
    before = snapshot()
    for label, names in ACTIONS.items():
        model_admin = admin.site._registry[apps.get_model(label)]
        for name in names:
            if Role.REVIEWER in names[name]:
                continue
            request = RequestFactory().post("/")
            request.user, request.session = reviewer, {}
            request._messages = FallbackStorage(request)
            queryset = model_admin.get_queryset(request)
            getattr(model_admin, name)(request, queryset)
            assert any("does not allow" in str(m) for m in request._messages), name
    assert snapshot() == before


def campaign_form(tenant, name) -> dict:
    return {"tenant": tenant.pk, "name": name, "goal": "", "audience": "{}", "n_items": "3", "review_required": "on",
            "task": "marketing_email", "include_genres": "[]", "exclude_genres": "[]", "max_maturity": "",
            "skip_emailed_days": "0", "promotion_share": "0", "subject_variants": "1", "subject_mode": "pick"}  # fmt: skip


def test_a_reviewer_in_one_tenant_and_marketer_in_another(rows, tenant, other_tenant):
    client = login(tenant, Role.REVIEWER, "mia")
    membership_add(tenant=other_tenant, username="mia", role=Role.MARKETER)
    mine_a = Campaign.dangerously_unscoped.get(tenant=tenant)
    mine_b = Campaign.dangerously_unscoped.get(tenant=other_tenant)
    change = "admin:campaigns_campaign_change"
    response = client.post(reverse(change, args=[mine_b.pk]), campaign_form(other_tenant, "B renamed"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Campaign.dangerously_unscoped.get(pk=mine_b.pk).name == "B renamed"
    assert client.post(reverse(change, args=[mine_a.pk]), campaign_form(tenant, "A renamed")).status_code == 403
    assert Campaign.dangerously_unscoped.get(pk=mine_a.pk).name == mine_a.name
    page = client.get(reverse(change, args=[mine_a.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    # Adding: she may add campaigns (in B), but the tenant she picks must be one where she may.
    add = reverse("admin:campaigns_campaign_add")
    form = client.get(add).content.decode()
    tenants = re.search(r'<select name="tenant".*?</select>', form, re.S).group(0)
    assert f'<option value="{other_tenant.pk}"' in tenants and f'<option value="{tenant.pk}"' not in tenants
    templates = re.search(r'<select name="template".*?</select>', form, re.S).group(0)
    assert "globex template" in templates and "acme template" not in templates
    refused = client.post(add, campaign_form(tenant, "into A"))
    assert refused.status_code == 200 and not Campaign.dangerously_unscoped.filter(name="into A").exists()
    assert client.post(add, campaign_form(other_tenant, "into B")).status_code == 302
    assert Campaign.dangerously_unscoped.filter(tenant=other_tenant, name="into B").exists()
    # Launching: offered (she may launch in B), run for B's campaign, refused for A's with nothing changed.
    url = reverse("admin:campaigns_campaign_changelist")
    runs = CampaignRun.dangerously_unscoped.count()
    page = client.post(url, {"action": "launch", "_selected_action": [mine_a.pk], "index": 0}, follow=True)
    assert "does not allow" in page.content.decode() and CampaignRun.dangerously_unscoped.count() == runs
    mixed = client.post(url, {"action": "launch", "_selected_action": [mine_a.pk, mine_b.pk], "index": 0})
    assert mixed.status_code == 302 and CampaignRun.dangerously_unscoped.count() == runs
    client.post(url, {"action": "launch", "_selected_action": [mine_b.pk], "index": 0})
    assert CampaignRun.dangerously_unscoped.filter(tenant=other_tenant).count() == 2


API_ACTIONS = {  # the API's actions and who may use them, as in the admin
    "emails/{}/approve/": REVIEW, "emails/{}/reject/": REVIEW, "emails/{}/edit/": REVIEW,
    "emails/{}/regenerate/": REVIEW, "emails/{}/mark_sent/": RUN, "emails/{}/send_again/": RUN,
    "campaigns/{}/launch/": RUN, "campaigns/{}/schedule/": RUN, "runs/{}/send/": RUN, "runs/{}/cancel/": RUN,
    "contacts/{}/unsubscribe/": DATA_ROLES, "contacts/{}/resubscribe/": DATA_ROLES,
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_the_api_allows_each_action_to_the_same_roles(tenant, role):
    """The role is checked first: a refused role is a 403, an allowed one gets past it to the body's checks (400)
    or the lookup of this absent object (404)."""
    from tests.conftest import api_client

    client = api_client(tenant, role)
    for path, roles in API_ACTIONS.items():
        answer = client.post("/api/v1/" + path.format(999999), {}, format="json")
        assert answer.status_code in ((400, 404) if role in roles else (403,)), (path, answer.status_code)


OWNER_ONLY = {
    Role.OWNER: (True, True, True),
    Role.MARKETER: (False, False, False),
    Role.REVIEWER: (False, False, False),
}
ACCOUNT_MATRIX = {  # members, keys and the tenant: the owner's; the quota count: nobody's to edit
    "tenants.membership": OWNER_ONLY,
    "tenants.apikey": OWNER_ONLY,
    "tenants.tenant": OWNER_ONLY | {Role.OWNER: (False, True, True)},  # a tenant is created by platform staff
    "tenants.quotausage": dict.fromkeys(ROLES, (False, False, False)),
}
ACCOUNT_ADMINS = sorted(
    f"{m._meta.app_label}.{m._meta.model_name}"
    for m, ma in admin.site._registry.items()
    if isinstance(ma, OwnersOnlyAdmin)
)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("label", ACCOUNT_ADMINS)
def test_only_owners_manage_members_keys_and_the_tenant(tenant, role, label):
    from tenants.models import ApiKey, QuotaUsage
    from tenants.services import quota_month, quota_reserve

    may_add, may_change, may_delete = ACCOUNT_MATRIX[label][role]
    client, (app, model) = login(tenant, role), label.split(".")
    ApiKey.objects.issue(tenant=tenant, name="a key")
    quota_reserve(tenant=tenant, count=3, month=quota_month())
    row = {"tenant": tenant, "apikey": ApiKey.objects.get(tenant=tenant), "quotausage": QuotaUsage.objects.get()}.get(
        model
    ) or apps.get_model(label).objects.get(tenant=tenant)
    add_url = reverse(f"admin:{app}_{model}_add")
    assert (f'href="{add_url}"' in client.get(reverse(f"admin:{app}_{model}_changelist")).content.decode()) is may_add
    assert client.get(add_url).status_code == (200 if may_add else 403)
    page = client.get(reverse(f"admin:{app}_{model}_change", args=[row.pk]))
    assert page.status_code == 200 and ('name="_save"' in page.content.decode()) is may_change
    assert client.get(reverse(f"admin:{app}_{model}_delete", args=[row.pk])).status_code == (200 if may_delete else 403)


DEFAULT_VIEWS = ("changelist", "add", "change", "delete", "history", "autocomplete")


def row_views() -> list[tuple[str, str, list[str]]]:
    """Every admin view of a row that a tenant-scoped admin adds to Django's own (progress, preview, buttons), read
    from the registry: (model label, URL name, the names of its other URL parameters)."""
    found = []
    for label in TENANT_ADMINS:
        model_admin = admin.site._registry[apps.get_model(label)]
        for pattern in model_admin.get_urls():
            name = pattern.name or ""
            if name and "object_id" in pattern.pattern.converters and not name.endswith(DEFAULT_VIEWS):
                found.append((label, name, [k for k in pattern.pattern.converters if k != "object_id"]))
    return found


def test_the_row_views_are_found():
    names = {name for _, name, _ in row_views()}
    assert {"campaigns_campaign_preview", "campaigns_campaign_do", "campaigns_campaignrun_progress"} <= names


@pytest.mark.parametrize("label, name, others", row_views(), ids=[v[1] for v in row_views()])
def test_every_row_view_answers_404_for_another_tenants_row(rows, tenant, other_tenant, label, name, others):
    """As a marketer of `tenant`: the other tenant's row is not there, whatever the method, and nothing changes."""
    client = login(tenant, Role.MARKETER)
    theirs = apps.get_model(label).dangerously_unscoped.filter(tenant=other_tenant).first()
    url = reverse(f"admin:{name}", kwargs={"object_id": theirs.pk, **dict.fromkeys(others, "launch")})
    before = snapshot()
    assert client.get(url).status_code == 404
    assert client.post(url, {"kind": "interval", "every": 1, "period": "days"}).status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("label", TENANT_ADMINS)
def test_another_tenants_row_is_a_404_on_its_own_pages(rows, tenant, other_tenant, label):
    """Not Django's redirect to the index saying "doesn't exist": a 404, as the API and every other page answer.
    What no one may do at all (delete an audit line, change a run) is a 403 whatever the id, so that is alike too."""
    client, (app, model) = login(tenant, Role.OWNER), label.split(".")
    theirs = apps.get_model(label).dangerously_unscoped.filter(tenant=other_tenant).first()
    before = snapshot()
    for view in ("change", "history"):
        assert client.get(reverse(f"admin:{app}_{model}_{view}", args=[theirs.pk])).status_code == 404
        assert client.get(reverse(f"admin:{app}_{model}_{view}", args=[987654321])).status_code == 404
    for method, view in (("get", "delete"), ("post", "delete"), ("post", "change")):
        call = getattr(client, method)
        hidden = call(reverse(f"admin:{app}_{model}_{view}", args=[theirs.pk]), {"post": "yes"}).status_code
        missing = call(reverse(f"admin:{app}_{model}_{view}", args=[987654321]), {"post": "yes"}).status_code
        assert hidden == missing and hidden in (403, 404), (method, view, hidden, missing)
    assert snapshot() == before


# How each admin view that is not about one row (the desk and its JSON views) is asked for another tenant's rows:
# by the filters naming their run or campaign (a 404), or by their ids (not found). A new such view fails
# test_every_list_view_has_a_cross_tenant_probe until it is given one here.
LIST_VIEW_PROBES = {
    "campaigns_generatedemail_desk": "filters",
    "campaigns_generatedemail_desk_queue": "filters",
    "campaigns_generatedemail_desk_bulk": "filters",
    "campaigns_generatedemail_desk_cards": "ids",
    "datasets_suppression_import": "tenant",  # an upload names the tenant it writes into
}


def list_views() -> list[str]:
    found = []
    for label in TENANT_ADMINS:
        for pattern in admin.site._registry[apps.get_model(label)].get_urls():
            name = pattern.name or ""
            if name and "object_id" not in pattern.pattern.converters and not name.endswith(DEFAULT_VIEWS):
                found.append(name)
    return found


def test_every_list_view_has_a_cross_tenant_probe():
    assert sorted(list_views()) == sorted(LIST_VIEW_PROBES)


@pytest.mark.parametrize("name", list_views())
def test_every_list_view_keeps_to_the_users_tenant(rows, tenant, other_tenant, name):
    """As a marketer of `tenant`: the other tenant's runs, campaigns and emails are not there, asked for by GET or
    POST, filtered or not, and nothing of theirs changes."""
    client, url = login(tenant, Role.MARKETER), reverse(f"admin:{name}")
    their_email = GeneratedEmail.dangerously_unscoped.filter(tenant=other_tenant).select_related("run").first()
    theirs = lambda: list(GeneratedEmail.dangerously_unscoped.filter(tenant=other_tenant).values())  # noqa: E731
    before, decision = theirs(), json.dumps({"action": "approve", "token": "x"})
    if LIST_VIEW_PROBES[name] == "filters":
        for query in (f"run={their_email.run_id}", f"campaign={their_email.run.campaign_id}"):
            assert client.get(f"{url}?{query}").status_code == 404
            assert client.post(f"{url}?{query}", decision, content_type="application/json").status_code == 404
        mine = GeneratedEmail.dangerously_unscoped.filter(tenant=tenant, status="draft").count()
        unfiltered = client.get(url)
        assert unfiltered.status_code == 200 and other_tenant.name not in unfiltered.content.decode()
        answer = unfiltered.json() if unfiltered["Content-Type"] == "application/json" else {}
        if "token" in answer:  # a bulk decision over everything in view leaves theirs alone
            client.post(
                url, json.dumps({"action": "approve", "token": answer["token"]}), content_type="application/json"
            )
        assert their_email.pk not in answer.get("ids", [])
        assert (answer.get("count", mine), answer.get("not_reviewed", 0)) == (mine, 0)  # theirs are not even counted
    elif LIST_VIEW_PROBES[name] == "tenant":
        listed = lambda: list(Suppression.dangerously_unscoped.filter(tenant=other_tenant).values())  # noqa: E731
        was = listed()
        page = client.get(url).content.decode()
        assert other_tenant.name not in page and f'value="{other_tenant.pk}"' not in page
        upload = SimpleUploadedFile("list.csv", b"EMAIL\nnew@example.com\n", content_type="text/csv")
        refused = client.post(url, {"tenant": other_tenant.pk, "file": upload})
        assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
        assert listed() == was
    else:
        answer = client.get(url, {"ids": str(their_email.pk)}).json()
        assert answer == {"cards": [], "missing": [their_email.pk]}
    assert theirs() == before


def test_the_preview_refuses_another_tenants_contact(rows, tenant, other_tenant):
    client = login(tenant, Role.MARKETER)
    mine = Campaign.dangerously_unscoped.filter(tenant=tenant).first()
    theirs = Contact.dangerously_unscoped.filter(tenant=other_tenant).first()
    url = reverse("admin:campaigns_campaign_preview", args=[mine.pk])
    assert client.get(f"{url}?contact={theirs.pk}").status_code == 404


def test_an_admin_request_reads_roles_once_and_again_after_a_membership_changes(tenant, django_assert_num_queries):
    from tenants.admin import roles_memoized, user_can
    from tenants.roles import Capability

    user = membership_add(tenant=tenant, username="rev", role=Role.REVIEWER).user
    with roles_memoized():
        with django_assert_num_queries(1):
            assert not user_can(user, Capability.MANAGE_ACCOUNT, tenant.pk)
            assert not user_can(user, Capability.MANAGE_ACCOUNT) and user_can(user, Capability.REVIEW)
        membership_add(tenant=tenant, username="rev", role=Role.OWNER)  # a promotion within the same request
        assert user_can(user, Capability.MANAGE_ACCOUNT, tenant.pk)
    membership_add(tenant=tenant, username="rev", role=Role.REVIEWER)
    assert not user_can(user, Capability.MANAGE_ACCOUNT, tenant.pk)  # outside an admin request: read each time
